"""Serving the app in the background and driving it with headless Chromium (tests, screenshots).

Uses the system Chromium (Debian's ``chromium`` package; ``LINQRAG_CHROMIUM`` overrides the path)
through Playwright, so nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from app import streamlit_command, streamlit_env


def find_chromium() -> str | None:
    explicit = os.environ.get("LINQRAG_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(index_dir: Path, port: int | None = None, log_path: Path | None = None,
          timeout: float = 120.0) -> Iterator[str]:
    """Run ``streamlit run app/main.py`` on loopback for ``index_dir``; yields the URL."""
    port = port or free_port()
    env = streamlit_env(index_dir)
    # the child holds its own copy of the log's descriptor, so ours is closed once it has started
    with open(log_path, "wb") if log_path else nullcontext(subprocess.DEVNULL) as log:
        process = subprocess.Popen(
            streamlit_command("127.0.0.1", port, "--server.fileWatcherType", "none"),
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {process.returncode} (log: {log_path})")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f}s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless system Chromium."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium found: install Debian's `chromium` package or set LINQRAG_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def ask(page, question: str, timeout_ms: int = 300_000) -> None:
    """Type a question into the chat box and wait until the answer's citations are on the page."""
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=60_000)
    box.fill(question)
    box.press("Enter")
    page.get_by_test_id("stExpander").first.wait_for(timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms
    )


def open_page(page, name: str) -> None:
    """Switch pages with the sidebar's page selector."""
    page.get_by_test_id("stSidebar").get_by_text(name, exact=True).click()
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=300_000
    )
