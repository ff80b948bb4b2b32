"""``python -m app api`` under hostile and changing conditions: real API processes on loopback, real
MiniLM, real Chroma on disk. Bad bodies from a table, limits, a rebuild under load, read-only and
unreadable index folders, a refused non-loopback bind; and the CLI's file names and FIFOs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from indexing import build_index, open_index
from indexing.chroma_server import free_port

from .conftest import TOPICS, api_process, wait_for

KEY = "sk-hardening-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_CHARS, MAX_BODY = 2000, 300_000  # small limits, so the table's over-long rows stay small
#: seconds after a build finishes by which every search is answered from it (refresh every 1 s,
#: then opening and warming the new build in the background, on two busy cores)
SWITCH_BOUND = 5.0


def write_topics(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TOPICS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, minilm) -> Path:
    corpus = write_topics(tmp_path_factory.mktemp("hardening-corpus"))
    index_dir = tmp_path_factory.mktemp("hardening-index") / "index"
    build_index(corpus, minilm, index_dir, name="topics", show_progress=False)
    return index_dir


@pytest.fixture(scope="module")
def api(small_index):
    with api_process(small_index, "--max-chars", str(MAX_CHARS), "--max-body-bytes", str(MAX_BODY), key=KEY) as url:
        yield url


def raw(text: str) -> bytes:
    """A body as sent on the wire (``\\ud800`` stays an escape: json.dumps of a lone surrogate is valid JSON)."""
    return text.encode()


DEEP = b"[" * 100_000 + b"]" * 100_000
TOO_LONG = "x" * (MAX_CHARS + 1)

#: (what, path, body: dict | bytes, extra headers, expected status, fragment of the error message)
BAD_REQUESTS = [
    ("corpus a list", "/search", {"query": "x", "corpus": ["a"]}, {}, 400, '"corpus" must be a string'),
    ("corpus a dict", "/search", {"query": "x", "corpus": {"a": 1}}, {}, 400, '"corpus" must be a string'),
    ("answer: corpus a list", "/answer", {"question": "x", "corpus": ["a"]}, {}, 400, '"corpus" must be a string'),
    ("answer: corpus a dict", "/answer", {"question": "x", "corpus": {"a": 1}}, {}, 400, '"corpus" must be'),
    ("nested 100,000 deep", "/search", DEEP, {}, 400, "nested too deeply"),
    ("nested 40 deep in a field", "/search", raw('{"query": "x", "k": ' + "[" * 40 + "]" * 40 + "}"), {}, 400,
     "nested too deeply"),
    ("lone surrogate in a query", "/search", raw('{"query": "magma \\ud800"}'), {}, 400, "invalid Unicode"),
    ("lone surrogate in a question", "/answer", raw('{"question": "\\udfff"}'), {}, 400, "invalid Unicode"),
    ("lone surrogate in an input", "/v1/embeddings", raw('{"input": "\\ud800"}'), {}, 400, "invalid Unicode"),
    ("lone surrogate in a list input", "/v1/embeddings", raw('{"input": ["ok", "a\\ud800b"]}'), {}, 400,
     "invalid Unicode"),
    ("lone surrogate in a key", "/search", raw('{"query": "x", "\\ud800": 1}'), {}, 400, "invalid Unicode"),
    ("paths a string", "/search", {"query": "x", "paths": "docs"}, {}, 400, '"paths" must be a list of strings'),
    ("paths a dict", "/search", {"query": "x", "paths": {"docs/": 1}}, {}, 400, '"paths" must be a list of strings'),
    ("paths holding a number", "/search", {"query": "x", "paths": ["docs/", 3]}, {}, 400, "list of strings"),
    ("titles a string", "/answer", {"question": "x", "titles": "intro"}, {}, 400, '"titles" must be a list'),
    ("query a number", "/search", {"query": 5}, {}, 400, 'non-empty string "query"'),
    ("query blank", "/search", {"query": "  "}, {}, 400, 'non-empty string "query"'),
    ("no question", "/answer", {"query": "x"}, {}, 400, 'non-empty string "question"'),
    ("k a string", "/search", {"query": "x", "k": "5"}, {}, 400, '"k" must be an integer'),
    ("k true", "/search", {"query": "x", "k": True}, {}, 400, '"k" must be an integer'),
    ("k a float", "/search", {"query": "x", "k": 2.5}, {}, 400, '"k" must be an integer'),
    ("k zero", "/answer", {"question": "x", "k": 0}, {}, 400, '"k" must be an integer from 1 to 1000'),
    ("k with 5000 digits", "/search", raw('{"query": "x", "k": ' + "9" * 5000 + "}"), {}, 400, "not valid JSON"),
    ("retriever unknown", "/search", {"query": "x", "retriever": "nope"}, {}, 400, '"retriever" must be one of'),
    ("retriever a list", "/search", {"query": "x", "retriever": ["dense"]}, {}, 400, '"retriever" must be one of'),
    ("mode unknown", "/answer", {"question": "x", "mode": "poetry"}, {}, 400, '"mode" must be one of'),
    ("mode a dict", "/answer", {"question": "x", "mode": {"a": 1}}, {}, 400, '"mode" must be one of'),
    ("input a number", "/v1/embeddings", {"input": 5}, {}, 400, '"input" must be a string or a non-empty list'),
    ("input an empty list", "/v1/embeddings", {"input": []}, {}, 400, "non-empty list of strings"),
    ("input numbers", "/v1/embeddings", {"input": [1, 2]}, {}, 400, "non-empty list of strings"),
    ("input empty", "/v1/embeddings", {"input": ""}, {}, 400, "input 0 is empty"),
    ("input blank in a list", "/v1/embeddings", {"input": ["ok", " "]}, {}, 400, "input 1 is empty"),
    ("model a list", "/v1/embeddings", {"input": "ok", "model": ["m"]}, {}, 400, '"model" must be a string'),
    ("encoding_format hex", "/v1/embeddings", {"input": "ok", "encoding_format": "hex"}, {}, 400,
     '"encoding_format" must be one of float, base64'),
    ("dimensions zero", "/v1/embeddings", {"input": "ok", "dimensions": 0}, {}, 400, '"dimensions" must be'),
    ("dimensions a string", "/v1/embeddings", {"input": "ok", "dimensions": "8"}, {}, 400, '"dimensions" must be'),
    ("dimensions past the model", "/v1/embeddings", {"input": "ok", "dimensions": 385}, {}, 400, "at most 384"),
    ("query over --max-chars", "/search", {"query": TOO_LONG}, {}, 413, f"the limit is {MAX_CHARS} (--max-chars)"),
    ("question over --max-chars", "/answer", {"question": TOO_LONG}, {}, 413, f"the limit is {MAX_CHARS}"),
    ("input over --max-chars", "/v1/embeddings", {"input": ["ok", TOO_LONG]}, {}, 413,
     f"input 1 is {MAX_CHARS + 1} characters; the limit is {MAX_CHARS}"),
    ("body over --max-body-bytes", "/search", {"query": "x", "pad": "y" * MAX_BODY}, {}, 413,
     f"over the limit of {MAX_BODY} bytes (--max-body-bytes)"),
    ("not JSON", "/search", b"query=x", {}, 400, "not valid JSON"),
    ("not UTF-8", "/search", b'{"query": "\xff"}', {}, 400, "not UTF-8"),
    ("a JSON array", "/search", b'["query"]', {}, 400, "must be a JSON object"),
    ("empty body", "/answer", b"", {}, 400, "not valid JSON"),
    ("no key", "/search", {"query": "x"}, {"Authorization": ""}, 401, "missing or wrong API key"),
    ("the key without its scheme", "/search", {"query": "x"}, {"Authorization": KEY}, 401, "missing or wrong API key"),
    ("a wrong key", "/v1/embeddings", {"input": "x"}, {"Authorization": "Bearer sk-wrong"}, 401, "wrong API key"),
    ("no such route", "/nowhere", {"query": "x"}, {}, 404, "Not Found"),
    ("a header of 200 KB", "/search", {"query": "x"}, {"X-Padding": "a" * 200_000}, 400,
     "Invalid HTTP request"),
]


@pytest.mark.parametrize(("what", "path", "body", "headers", "status", "fragment"), BAD_REQUESTS,
                         ids=[row[0] for row in BAD_REQUESTS])
def test_a_bad_request_gets_its_4xx_and_a_one_line_json_error(api, what, path, body, headers, status, fragment):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {**AUTH, "Content-Type": "application/json", **headers}
    try:
        reply = httpx.post(f"{api}{path}", content=content, headers={k: v for k, v in sent.items() if v}, timeout=60)
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        # an oversized header: the server answers 400 and closes while the client may still be sending,
        # so the client sometimes sees the reset before the answer; either way it was refused on arrival
        assert "X-Padding" in headers, what
        reply = None
    if reply is not None:
        assert reply.status_code == status, (what, reply.status_code, reply.text[:300])
    if reply is not None and "X-Padding" in headers:  # h11 refuses an oversized header itself, in plain text
        assert fragment in reply.text, reply.text
    elif reply is not None:
        error = reply.json()["error"]
        assert set(error) == {"message", "type"} and "\n" not in reply.text, reply.text
        assert fragment in error["message"], (what, error)
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200  # and the server is still up


def test_a_chunked_body_is_cut_off_at_the_limit_and_a_huge_header_while_it_arrives(api):
    def pieces():
        for _ in range(MAX_BODY // 10_000 + 5):
            yield b" " * 10_000  # no Content-Length: the limit holds while reading

    reply = httpx.post(f"{api}/search", content=pieces(), headers=AUTH, timeout=60)
    assert reply.status_code == 413 and "--max-body-bytes" in reply.json()["error"]["message"]

    sent = 0
    with socket.create_connection(("127.0.0.1", int(api.rsplit(":", 1)[1])), timeout=30) as sock:
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            while sent < 100 * 2**20:  # a 100 MB header: refused long before its end
                sock.sendall(b"a" * 2**16)
                sent += 2**16
        except OSError:  # reset by the server
            pass
        try:
            answer = sock.recv(200)
        except OSError:
            answer = b""
    assert sent < 32 * 2**20, f"{sent} header bytes were accepted"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer


def test_bearer_in_any_case_and_the_openai_encodings(api, minilm):
    lower = httpx.post(f"{api}/v1/embeddings", json={"input": "Magma rises."},
                       headers={"Authorization": f"bearer {KEY}"}, timeout=60)
    assert lower.status_code == 200
    floats = np.array(lower.json()["data"][0]["embedding"], dtype=np.float32)
    np.testing.assert_allclose(floats, minilm.encode(["Magma rises."])[0], atol=1e-5)

    packed = httpx.post(f"{api}/v1/embeddings", json={"input": "Magma rises.", "encoding_format": "base64"},
                        headers=AUTH, timeout=60).json()["data"][0]["embedding"]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(packed), dtype="<f4"), floats)

    short = httpx.post(f"{api}/v1/embeddings", json={"input": "Magma rises.", "dimensions": 8},
                       headers=AUTH, timeout=60).json()["data"][0]["embedding"]
    assert len(short) == 8 and np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(short, floats[:8] / np.linalg.norm(floats[:8]), atol=1e-5)

    # a long input costs its first window: the vector of 2,000 characters is the one of their first 8 x 256
    long_text = "Basalt columns form as lava cools. " * 57
    both = httpx.post(f"{api}/v1/embeddings", json={"input": [long_text, long_text[:8 * minilm.max_length]]},
                      headers=AUTH, timeout=60).json()["data"]
    np.testing.assert_allclose(both[0]["embedding"], both[1]["embedding"], atol=1e-6)


def test_a_long_query_is_embedded_from_its_first_window_and_bm25_reads_it_all(topics_index_dir, minilm):
    from indexing.retrievers import WINDOW_CHARS_PER_TOKEN

    index = open_index(topics_index_dir)
    padding = "padding " * 20_000  # 160,000 characters, far past MiniLM's 256 tokens
    query = "how does a volcano erupt " + padding
    dense = index.retriever("dense", minilm).search(query, 3)
    window = index.retriever("dense", minilm).search(query[:WINDOW_CHARS_PER_TOKEN * minilm.max_length], 3)
    assert [(h.chunk_id, round(h.score, 5)) for h in dense.hits] == [(h.chunk_id, round(h.score, 5))
                                                                     for h in window.hits]
    assert dense.notes and dense.notes[0].startswith("query is over")
    assert all(len(text) <= WINDOW_CHARS_PER_TOKEN * minilm.max_length for _, _, text in index._vectors)
    bm25 = index.retriever("bm25").search(padding + "honey bees colonies", 1)
    assert bm25.hits[0].doc_id == "bees.txt"  # the words past the window still count for BM25


def test_a_running_api_serves_a_new_build_between_requests_without_a_failed_one(tmp_path, minilm):
    """4 clients search while a build removes a document and adds two: every answer is 200, and
    from SWITCH_BOUND seconds after the build on, every one comes from the new build."""
    corpus = write_topics(tmp_path / "corpus")
    (corpus / "zebra.txt").write_text("Zebra crossings are painted with white stripes so drivers stop for walkers.")
    index_dir = tmp_path / "index"
    build_index(corpus, minilm, index_dir, name="live", show_progress=False)
    plan = [(q, r) for q in ("quasar telescope redshift", "zebra crossing stripes")
            for r in ("dense", "bm25", "hybrid")]
    log: list[tuple[float, object, str, set]] = []
    stop = threading.Event()

    def client(url: str, start: int) -> None:
        with httpx.Client(headers=AUTH, timeout=120) as http:
            n = start
            while not stop.is_set():
                query, retriever = plan[n % len(plan)]
                n += 1
                began = time.monotonic()
                try:
                    reply = http.post(f"{url}/search", json={"query": query, "retriever": retriever, "k": 3})
                    status = reply.status_code
                    docs = {h["doc_id"] for h in reply.json()["hits"]} if status == 200 else set()
                except httpx.HTTPError as problem:
                    status, docs = repr(problem), set()
                log.append((began, status, f"{retriever}:{query}", docs))

    with api_process(index_dir, key=KEY) as url:
        clients = [threading.Thread(target=client, args=(url, n)) for n in range(4)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(2)
            (corpus / "zebra.txt").unlink()
            (corpus / "quasar.txt").write_text("A quasar is so bright that a small telescope sees it; its redshift "
                                               "tells how far away it is.")
            (corpus / "comet.txt").write_text("A comet grows a tail of gas and dust as it nears the sun.")
            report = build_index(corpus, minilm, index_dir, name="live", show_progress=False)
            built = time.monotonic()
            assert report.removed >= 1 and report.embedded >= 2
            time.sleep(SWITCH_BOUND + 3)
        finally:
            stop.set()
            for thread in clients:
                thread.join(120)

    failed = [entry for entry in log if entry[1] != 200]
    assert not failed, failed[:5]
    assert len(log) > 40, len(log)
    first_new = min(began for began, _, _, docs in log if "quasar.txt" in docs)
    assert first_new - built <= SWITCH_BOUND, f"the new build was first served {first_new - built:.1f} s after"
    late = [entry for entry in log if entry[0] >= built + SWITCH_BOUND]
    assert len(late) >= 6, late
    for began, _, asked, docs in late:
        assert "zebra.txt" not in docs, (began - built, asked, docs)
        if asked.endswith("quasar telescope redshift"):
            assert "quasar.txt" in docs, (began - built, asked, docs)


# ---- permissions -------------------------------------------------------------------------------
def runs(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def as_owner_prefix() -> tuple[str, ...]:
    """A command prefix under which mode bits bind: none for a normal user; for root, a new user
    namespace (``unshare -U``: root's files keep their owner, but root loses the override of modes)."""
    if os.geteuid() != 0:
        return ()
    if not runs(["unshare", "-U", "true"]):
        pytest.skip("running as root and `unshare -U` is not available: chmod cannot stop root here")
    return ("unshare", "-U")


def read_only_mount_prefix(folder: Path) -> tuple[str, ...]:
    """A command prefix that sees ``folder`` bind-mounted read-only, in a mount namespace of its own
    (nothing outside the command sees the mount; it ends with the command)."""
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = ("unshare", "-m", "--propagation", "private", "sh", "-c", script, str(folder))
    if os.geteuid() != 0 or not runs([*prefix, "true"]):
        pytest.skip("a private read-only bind mount needs root and unshare -m")
    return prefix


def make_unwritable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def writable_again(folder: Path) -> None:
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture()
def own_index(small_index, tmp_path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(small_index, copy)
    yield copy
    writable_again(copy)


def cli(prefix: tuple[str, ...], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "indexing", *args], capture_output=True, text=True,
                          check=False, timeout=300)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("fault", ["chmod", "read-only mount"])
def test_an_unwritable_index_folder_is_one_line_naming_it_and_a_steady_503(own_index, tmp_path, fault):
    corpus = write_topics(tmp_path / "corpus")
    if fault == "chmod":
        prefix = as_owner_prefix()
        make_unwritable(own_index)
        why = "(permission denied)"
    else:
        prefix = read_only_mount_prefix(own_index)
        why = "(a read-only file system)"
    build = cli(prefix, "build", "--corpus", str(corpus), "--embedder", "minilm", "--name", "topics",
                "--index-dir", str(own_index), "--no-progress")
    assert build.returncode == 2 and "Traceback" not in build.stderr, build.stderr[-2000:]
    assert len(error_lines(build.stderr)) == 1
    assert error_lines(build.stderr)[0].startswith(
        f"error: no write permission on the index folder {own_index} {why}; building needs it")
    dense = cli(prefix, "search", "magma", "--retriever", "dense", "--index-dir", str(own_index))
    assert dense.returncode == 2 and "Traceback" not in dense.stderr, dense.stderr[-2000:]
    line = error_lines(dense.stderr)[0]
    assert line.startswith(f"error: no write permission on the index folder {own_index / 'chroma'} {why}")
    assert "delete the index directory" not in line
    assert cli(prefix, "search", "magma", "--retriever", "bm25", "--index-dir", str(own_index)).returncode == 0

    with api_process(own_index, prefix=prefix, key=KEY) as url:
        replies = [httpx.post(f"{url}/search", json={"query": "magma"}, headers=AUTH, timeout=120) for _ in range(3)]
        replies.append(httpx.post(f"{url}/answer", json={"question": "magma?"}, headers=AUTH, timeout=120))
        assert [r.status_code for r in replies] == [503] * 4, [r.text[:200] for r in replies]
        assert len({r.json()["error"]["message"] for r in replies}) == 1
        assert replies[0].json()["error"]["message"] == line.removeprefix("error: ")
        bm25 = httpx.post(f"{url}/search", json={"query": "magma", "retriever": "bm25"}, headers=AUTH, timeout=60)
        assert bm25.status_code == 200 and bm25.json()["hits"][0]["doc_id"] == "volcano.html"


def test_an_unreadable_index_folder_is_one_line_naming_it_and_a_steady_503(own_index):
    prefix = as_owner_prefix()
    own_index.chmod(0)
    got = cli(prefix, "search", "magma", "--retriever", "bm25", "--index-dir", str(own_index))
    assert got.returncode == 2 and "Traceback" not in got.stderr, got.stderr[-2000:]
    line = error_lines(got.stderr)[0]
    assert line == f"error: no read permission on the index folder {own_index} (permission denied); " \
                   "give this user read access to it"
    with api_process(own_index, prefix=prefix, key=KEY) as url:
        replies = [httpx.post(f"{url}/search", json={"query": "magma"}, headers=AUTH, timeout=60) for _ in range(2)]
        assert [r.status_code for r in replies] == [503, 503]
        assert {r.json()["error"]["message"] for r in replies} == {line.removeprefix("error: ")}


def test_permission_faults_are_told_apart_from_missing_or_damaged_files(tmp_path):
    import errno

    from indexing.store import IndexPermissionError, as_permission_error

    for number, why in ((errno.EACCES, "permission denied"), (errno.EROFS, "a read-only file system")):
        got = as_permission_error(OSError(number, os.strerror(number)), tmp_path, "write")
        assert isinstance(got, IndexPermissionError)
        assert str(got).startswith(f"no write permission on the index folder {tmp_path} ({why})")
    assert as_permission_error(FileNotFoundError(errno.ENOENT, "gone"), tmp_path, "read") is None
    assert as_permission_error(ValueError("not JSON"), tmp_path, "read") is None
    chroma = as_permission_error(RuntimeError("attempt to write a readonly database"), tmp_path, "write")
    assert isinstance(chroma, IndexPermissionError)


# ---- binding beyond loopback ---------------------------------------------------------------------
@pytest.mark.parametrize(("command", "secret"), [("api", "LINQRAG_API_KEY"), ("serve", "LINQRAG_APP_PASSWORD")])
def test_a_non_loopback_host_without_a_secret_is_refused_before_anything_starts(command, secret, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("LINQRAG_API_KEY", "LINQRAG_APP_PASSWORD")}
    port = free_port()
    start = time.monotonic()
    got = subprocess.run([sys.executable, "-m", "app", command, "--host", "0.0.0.0", "--port", str(port),
                          "--index-dir", str(tmp_path / "index")], capture_output=True, text=True, env=env,
                         check=False, timeout=120)
    assert got.returncode == 2 and got.stdout == "", got
    assert got.stderr.strip().splitlines() == [
        f"error: refusing to serve 0.0.0.0:{port} (beyond this machine) without {secret}: set it, or pass "
        f"--allow-unauthenticated to let anyone who reaches 0.0.0.0:{port} in"], got.stderr
    assert time.monotonic() - start < 60 and not (tmp_path / "index").exists()  # no model, no index, no socket


def test_which_hosts_count_as_loopback():
    from app.access import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "myhost", ""))


def test_sigterm_to_app_serve_stops_its_streamlit_child(tmp_path):
    port = free_port()
    parent = subprocess.Popen([sys.executable, "-m", "app", "serve", "--no-build", "--port", str(port),
                               "--index-dir", str(tmp_path / "index")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/_stcore/health", parent)
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        assert len(children) == 1, children
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(30) is not None
        child = int(children[0])
        deadline = time.monotonic() + 5
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        if parent.poll() is None:
            parent.kill()


# ---- the CLI and the loader ------------------------------------------------------------------------
def test_a_newline_in_a_file_name_does_not_split_the_hit_line(tmp_path, minilm):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "two\nlines.txt").write_text("Lighthouses guide ships past the rocks at night.")
    (corpus / "other.txt").write_text("Bread rises when the yeast feeds on sugar.")
    build_index(corpus, minilm, tmp_path / "index", name="names", show_progress=False)
    got = cli((), "search", "lighthouse ships", "--retriever", "bm25", "-k", "1", "--index-dir",
              str(tmp_path / "index"))
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert lines[1].startswith("  1.") and "two\\nlines.txt [0:" in lines[1], lines
    assert not any(line.startswith("lines.txt") for line in lines)


def test_a_fifo_in_a_corpus_folder_is_skipped_with_a_reason(tmp_path):
    from corpora import load_directory

    (tmp_path / "note.txt").write_text("Tides follow the moon.")
    os.mkfifo(tmp_path / "pipe.txt")
    report = load_directory(tmp_path)  # returns: the FIFO is never opened (that would block)
    assert [d.doc_id for d in report.documents] == ["note.txt"]
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("pipe.txt", "not a regular file (a FIFO, socket or device): not read")]
