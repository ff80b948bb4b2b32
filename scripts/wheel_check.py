"""Install linqrag from its wheel into a fresh virtual environment and check that `linqrag serve` works there.

    python scripts/wheel_check.py [--keep]          (make wheel-check; .ci/run runs it)

1. builds the wheel (`pip wheel --no-deps`) from a copy of the checkout's files (tracked and untracked, not
   ignored), so no stale build/ folder or egg-info leaks into it;
2. makes a venv with --system-site-packages (the heavy dependencies already installed are reused, pip
   included) and `pip install --no-deps` the wheel into it;
3. from an empty folder outside the checkout: every linqrag package imports from the venv, not the checkout;
   the demo corpus the wheel carries equals the checkout's (README.md, docs/*.md, the modules' docstrings);
   `linqrag --help` lists the subcommands;
4. `linqrag serve --embedder minilm` on a free loopback port: it builds the demo index, Streamlit's
   /_stcore/health answers `ok` and the page is served; the app script itself runs (Streamlit's AppTest, in the
   venv) without an exception; then it is stopped with SIGTERM and `linqrag stats` / `linqrag search` read the
   demo index.

Prints each step with its seconds; exits 1 naming the step that failed. Everything lives in one temporary
folder, removed at the end (--keep keeps it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.commands import SUBCOMMANDS
from corpora.demo import DEMO_CORPUS_NAME, demo_documents

PACKAGES = ("linqrag", "corpora", "embedder", "indexing", "answers", "eval", "finetune", "app")
#: seconds `linqrag serve` gets to build the demo index with MiniLM and start Streamlit
SERVE_TIMEOUT = 240.0


class CheckFailed(Exception):
    pass


def step(name: str, started: list[float]) -> None:
    now = time.monotonic()
    print(f"[wheel-check] {name} ({now - started[0]:.1f}s)", flush=True)
    started[0] = now


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise CheckFailed(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout[-2000:]}"
                          f"\n{done.stderr[-3000:]}")
    return done


#: what a copy of a checkout without git leaves out (the rest of .gitignore does not reach the wheel anyway)
NOT_SOURCE = ("*.egg-info", "build", "dist", "__pycache__", ".git", ".linqrag", "runs", ".venv", ".pytest_cache",
              ".ruff_cache")


def copy_checkout(target: Path) -> None:
    """The files of the working tree git knows or would add (tracked, and untracked but not ignored)."""
    try:
        listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    except (CheckFailed, FileNotFoundError):  # not a git checkout (an unpacked archive), or no git
        shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        return
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not part of it
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def venv_env(venv: Path, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LINQRAG_INDEX_DIR", "LINQRAG_CHROMA_URL")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               LINQRAG_CACHE=str(work / "cache"), HF_HUB_OFFLINE=env.get("HF_HUB_OFFLINE", "1"))
    return env


WHERE = """
import json, sys
import corpora.demo as demo
names = {}
for package in sys.argv[1:]:
    names[package] = __import__(package).__file__
print(json.dumps({"files": names, "guide": str(demo.guide_root()), "docs": demo.demo_documents()}))
"""


def check_installed(venv: Path, env: dict[str, str], cwd: Path) -> None:
    """Each package imports from the venv, and the wheel's demo corpus is the checkout's."""
    found = json.loads(run([venv / "bin" / "python", "-c", WHERE, *PACKAGES], env=env, cwd=cwd).stdout)
    site = run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               env=env, cwd=cwd).stdout.strip()
    outside = {p: f for p, f in found["files"].items() if not Path(f).resolve().is_relative_to(Path(site).resolve())}
    if outside:
        raise CheckFailed(f"imported from outside the venv ({site}): {outside}")
    if not Path(found["guide"]).is_relative_to(Path(site).resolve()):
        raise CheckFailed(f"the installed demo corpus reads the guide from {found['guide']}, not the wheel")
    ours = demo_documents()
    if found["docs"] != ours:
        missing = sorted(set(ours) - set(found["docs"]))
        extra = sorted(set(found["docs"]) - set(ours))
        changed = sorted(k for k in set(ours) & set(found["docs"]) if ours[k] != found["docs"][k])
        raise CheckFailed(f"the wheel's demo corpus differs from the checkout's: missing {missing}, extra {extra}, "
                          f"changed {changed}")
    print(f"[wheel-check] imports from {site}; demo corpus: {len(ours)} documents, equal to the checkout's")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=3) as response:
        return response.status, response.read().decode("utf-8", "replace")


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailed(f"linqrag serve exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if get(f"{url}/_stcore/health") == (200, "ok"):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise CheckFailed(f"{url}/_stcore/health did not answer ok within {SERVE_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")


APP_TEST = """
import sys
from streamlit.testing.v1 import AppTest
import app
at = AppTest.from_file(str(app.MAIN), default_timeout=180).run()
if at.exception:
    sys.exit(f"the app raised: {[e.value for e in at.exception]}")
at.chat_input[0].set_value("How do I index a folder?").run()
if at.exception:
    sys.exit(f"the Chat page raised: {[e.value for e in at.exception]}")
answer = at.session_state["chat"][-1]["answer"]
print(f"Chat on the demo corpus ({answer.mode}): {' '.join(answer.text.split())[:100]}")
"""


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # `linqrag serve` passes it to Streamlit and waits for it
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def serve_and_check(venv: Path, env: dict[str, str], work: Path, started: list[float]) -> None:
    index = work / "index"
    port = free_port()
    log = work / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([venv / "bin" / "linqrag", "serve", "--embedder", "minilm", "--port", str(port),
                                    "--index-dir", index], cwd=work / "run", env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        status, page = get(url)
        if status != 200 or "<html" not in page.lower():
            raise CheckFailed(f"{url} answered {status} without a page")
        built = [line for line in log.read_text().splitlines() if line.startswith("demo index:")]
        if not built:
            raise CheckFailed(f"linqrag serve did not report the demo index:\n{log.read_text()[-3000:]}")
        print(f"[wheel-check] {built[0]}")
        step(f"linqrag serve: demo index built, {url}/_stcore/health ok, page served", started)
        app_env = dict(env, LINQRAG_INDEX_DIR=str(index))
        shown = run([venv / "bin" / "python", "-c", APP_TEST], env=app_env, cwd=work / "run", timeout=300)
        print(f"[wheel-check] {shown.stdout.strip()}")
        step("the app runs from the wheel and answers on the demo corpus (AppTest)", started)
    finally:
        stop(process)
    if process.returncode not in (0, -signal.SIGTERM):
        raise CheckFailed(f"linqrag serve stopped with {process.returncode}:\n{log.read_text()[-3000:]}")
    step("linqrag serve stopped by SIGTERM", started)
    stats = run([venv / "bin" / "linqrag", "stats", "--index-dir", index], env=env, cwd=work / "run").stdout
    if DEMO_CORPUS_NAME not in stats:
        raise CheckFailed(f"linqrag stats does not show {DEMO_CORPUS_NAME}:\n{stats}")
    hits = run([venv / "bin" / "linqrag", "search", "how do I index a folder?", "-k", "3", "--index-dir", index],
               env=env, cwd=work / "run").stdout
    if "3 hits" not in hits:
        raise CheckFailed(f"linqrag search found no 3 hits in the demo index:\n{hits}")
    step("linqrag stats and linqrag search read the demo index", started)


def check(work: Path) -> None:
    started = [time.monotonic()]
    begun = started[0]
    source, dist, venv = work / "src", work / "dist", work / "venv"
    (work / "run").mkdir(parents=True)
    copy_checkout(source)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, source])
    wheel = next(dist.glob("linqrag-*.whl"))
    step(f"built {wheel.name}", started)
    # no pip of its own: the one in the system site-packages installs into the venv it runs in
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", wheel])
    step("installed it into a fresh venv (--system-site-packages, --no-deps)", started)
    env = venv_env(venv, work)
    check_installed(venv, env, work / "run")
    usage = run([venv / "bin" / "linqrag", "--help"], env=env, cwd=work / "run").stdout
    unlisted = [name for name in SUBCOMMANDS if f"  {name} " not in usage]
    if unlisted:
        raise CheckFailed(f"linqrag --help does not list {unlisted}")
    step(f"linqrag --help lists its {len(SUBCOMMANDS)} subcommands", started)
    serve_and_check(venv, env, work, started)
    print(f"[wheel-check] passed in {time.monotonic() - begun:.0f}s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="linqrag-wheel-check-"))
    try:
        check(work)
        return 0
    except CheckFailed as failure:
        print(f"[wheel-check] FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"[wheel-check] kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
