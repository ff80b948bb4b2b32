"""The app served on loopback and driven by headless Chromium: a question gets a cited answer."""

from __future__ import annotations

import pytest

from app.browser import ask, browser_page, find_chromium, serve


@pytest.fixture(scope="module")
def served_index(topics_index_dir):
    return topics_index_dir


def test_browser_asks_and_sees_a_cited_answer(served_index, tmp_path):
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (.ci/run does) or set LINQRAG_CHROMIUM")
    pytest.importorskip("playwright", reason="playwright is in the dev extra: pip install -e .[dev]")
    with serve(served_index, log_path=tmp_path / "streamlit.log") as url, browser_page() as page:
        page.goto(url)
        ask(page, "How does a volcano erupt?")
        shot = tmp_path / "chat.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        answer = page.get_by_test_id("stChatMessage").last.inner_text()
        assert "[1]" in answer, answer
        assert "magma rises through the crust" in answer, "the extractive answer names the cause"
        expander = page.get_by_test_id("stExpander").first
        assert "volcano.html" in expander.inner_text()
        expander.click()
        mark = expander.locator("mark").first
        mark.wait_for(timeout=10_000)
        assert mark.inner_text().strip()
