"""The index on a real Chroma in a temp dir, real BM25 and the real MiniLM embedder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corpora import CorpusError
from indexing import IndexMismatchError, IndexStoreError, build_index, open_index, rrf_fuse
from indexing.bm25 import BM25Index, tokenize
from indexing.chunking import ChunkConfig

ROOT = Path(__file__).resolve().parents[1]


def build(corpus, emb, index_dir, **kwargs):
    return build_index(corpus, emb, index_dir, show_progress=False, **kwargs)


def test_build_search_and_rebuild_embeds_nothing(topic_corpus, minilm, tmp_path):
    first = build(topic_corpus, minilm, tmp_path / "index")
    assert first.embedded == first.total > 0 and first.kept == 0 and first.removed == 0
    index = open_index(tmp_path / "index")
    assert index.store.count() == first.total == len(index.chunks)
    for kind in ("dense", "bm25", "hybrid"):
        result = index.retriever(kind, minilm).search("How does a volcano erupt?", k=3)
        assert result.hits[0].doc_id == "volcano.html", (kind, result.hits)
        assert result.seconds > 0 and [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    hit = index.retriever("dense", minilm).search("steam trains", k=1).hits[0]
    assert hit.doc_id == "trains.pdf" and hit.metadata["source"].endswith("trains.pdf")
    again = build(topic_corpus, minilm, tmp_path / "index")
    assert (again.embedded, again.kept, again.removed) == (0, first.total, 0)
    assert again.summary() == f"embedded 0 new chunks, kept {first.total}, removed 0"


def test_chunks_keep_offsets_into_their_document(topic_corpus, minilm, tmp_path):
    build(topic_corpus, minilm, tmp_path / "index", chunk_config=ChunkConfig(24, 4))
    index = open_index(tmp_path / "index")
    from corpora import load_directory

    docs = {d.doc_id: d.text for d in load_directory(topic_corpus).documents}
    assert len(index.chunks) > len(docs)  # small chunks: documents were split
    for chunk in index.chunks.values():
        assert docs[chunk.doc_id][chunk.start : chunk.end] == chunk.text


def test_editing_one_file_re_embeds_only_its_chunks(topic_corpus, minilm, tmp_path):
    build(topic_corpus, minilm, tmp_path / "index", chunk_config=ChunkConfig(24, 4))
    before = open_index(tmp_path / "index").chunks
    bees_before = {cid for cid, c in before.items() if c.doc_id == "bees.txt"}
    (topic_corpus / "bees.txt").write_text("Bumblebees are larger and hairier than honey bees and nest in the ground.")
    report = build(topic_corpus, minilm, tmp_path / "index", chunk_config=ChunkConfig(24, 4))
    after = open_index(tmp_path / "index").chunks
    bees_after = {cid for cid, c in after.items() if c.doc_id == "bees.txt"}
    assert report.embedded == len(bees_after - bees_before) > 0
    assert report.removed == len(bees_before - bees_after) > 0
    assert set(before) - bees_before == set(after) - bees_after  # every other chunk kept as it was


def test_deleting_a_file_removes_its_chunks_everywhere(topic_corpus, minilm, tmp_path):
    build(topic_corpus, minilm, tmp_path / "index")
    (topic_corpus / "chess.md").unlink()
    report = build(topic_corpus, minilm, tmp_path / "index")
    assert report.removed >= 1 and report.embedded == 0
    index = open_index(tmp_path / "index")
    assert all(c.doc_id != "chess.md" for c in index.chunks.values())
    assert index.store.count() == len(index.chunks)
    for kind in ("dense", "bm25", "hybrid"):
        hits = index.retriever(kind, minilm).search("Sicilian Defence chess opening", k=10).hits
        assert all(h.doc_id != "chess.md" for h in hits)


def _write_big_corpus(folder: Path, n_docs: int = 30) -> None:
    rng = np.random.default_rng(0)
    words = ["river", "mountain", "valley", "sediment", "delta", "erosion", "water", "rain", "cloud", "forest", "tree",
             "leaf", "root", "soil"]
    folder.mkdir()
    for i in range(n_docs):
        paragraphs = [" ".join(rng.choice(words, 40)) + "." for _ in range(3)]
        (folder / f"doc{i:03d}.txt").write_text(f"Document {i}.\n\n" + "\n\n".join(paragraphs))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "indexing", *args]


def test_killed_build_then_rebuild_equals_a_clean_build(tmp_path):
    corpus = tmp_path / "big"
    _write_big_corpus(corpus)
    common = ["--corpus", str(corpus), "--embedder", "minilm", "--chunk-size", "32", "--chunk-overlap", "4",
              "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(_cli("build", *common, "--index-dir", str(tmp_path / "killed"), "--commit-every", "4",
                                 "--batch-size", "4", "-v"),
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    upserts = 0
    for line in proc.stderr:
        if "upserted" in line:
            upserts += 1
            if upserts == 3:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"

    subprocess.run(_cli("build", *common, "--index-dir", str(tmp_path / "killed")), cwd=ROOT, env=env, check=True,
                   capture_output=True)
    subprocess.run(_cli("build", *common, "--index-dir", str(tmp_path / "clean")), cwd=ROOT, env=env, check=True,
                   capture_output=True)
    killed, clean = open_index(tmp_path / "killed"), open_index(tmp_path / "clean")
    assert set(killed.chunks) == set(clean.chunks)
    assert killed.store.ids() == clean.store.ids() == set(clean.chunks)
    assert killed.store.count() == clean.store.count()  # no duplicates
    assert set(killed.bm25.ids) == set(clean.chunks)


def test_bm25s_agrees_with_rank_bm25_on_top_hits():
    from rank_bm25 import BM25Okapi

    from tests.conftest import TOPICS

    texts = list(TOPICS.values()) + [
        "Wind turbines turn moving air into electricity for the grid.",
        "Sourdough bread rises with wild yeast instead of baker's yeast.",
        "Glaciers carve valleys as the ice moves slowly downhill.",
    ]
    ids = [f"d{i}" for i in range(len(texts))]
    ours = BM25Index.build(ids, texts)
    tokens = tokenize(texts)
    vocab = {i: w for w, i in tokens.vocab.items()}
    reference = BM25Okapi([[vocab[t] for t in doc] for doc in tokens.ids])
    queries = ["solar panels electricity", "bread yeast dough", "volcano magma lava", "chess opening pawn",
               "honey bees hive", "river erosion valley", "glacier ice"]
    for query in queries:
        q = tokenize([query])
        qv = {i: w for w, i in q.vocab.items()}
        ref_scores = reference.get_scores([qv[t] for t in q.ids[0]])
        ref_top = [ids[i] for i in np.argsort(-ref_scores)[:3] if ref_scores[i] > 0]
        our_top = [cid for cid, _ in ours.search(query, 3)]
        assert our_top[0] == ref_top[0], query
        assert len(set(our_top) & set(ref_top)) >= min(2, len(ref_top)), query


def test_rrf_fuses_by_reciprocal_rank():
    fused = dict(rrf_fuse({"dense": ["a", "b", "c"], "bm25": ["c", "a"]}))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    weighted = rrf_fuse({"dense": ["a", "b"], "bm25": ["b", "a"]}, weights={"dense": 2.0, "bm25": 1.0})
    assert [d for d, _ in weighted] == ["a", "b"]


def test_hybrid_differs_from_both_when_they_disagree(topic_corpus, minilm, tmp_path):
    # "cranes" the machines share no word with the query; "loads" of laundry and crane the bird
    # share words but not meaning. Dense and BM25 disagree, and fusion must show both sides.
    extra = {
        "machines.txt": "Tower machinery on building sites hoists steel beams with cables, pulleys and a "
                        "counterweight.",
        "birds.txt": "Cranes are tall wading birds; flocks of cranes dance in spring marshes.",
        "laundry.txt": "Laundry loads: sort heavy towels from delicate shirts before washing.",
    }
    for name, text in extra.items():
        (topic_corpus / name).write_text(text)
    build(topic_corpus, minilm, tmp_path / "index")
    index = open_index(tmp_path / "index")
    query = "How do cranes lift heavy loads?"
    runs = {kind: index.retriever(kind, minilm).search(query, 3) for kind in ("dense", "bm25", "hybrid")}
    top = {kind: [h.doc_id for h in result.hits] for kind, result in runs.items()}
    assert top["dense"][0] == "machines.txt" and top["bm25"][0] == "laundry.txt"
    assert top["hybrid"] != top["dense"] and top["hybrid"] != top["bm25"]
    assert {"machines.txt", "laundry.txt"} <= set(top["hybrid"])
    deep = {kind: [h.chunk_id for h in index.retriever(kind, minilm).search(query, 100).hits]
            for kind in ("dense", "bm25")}
    expected = [cid for cid, _ in rrf_fuse(deep)][:3]
    assert [h.chunk_id for h in runs["hybrid"].hits] == expected


def test_query_path_encodes_once_on_query_threads_and_ranks_as_chroma(topic_corpus, minilm, tmp_path, monkeypatch):
    # The latency path (indexing.retrieval docstring): one encoding per query on QUERY_THREADS torch
    # threads, reused by hybrid; no count() before the HNSW search, even for k above the index size.
    import torch

    from indexing.retrieval import QUERY_THREADS, query_threads

    build(topic_corpus, minilm, tmp_path / "index")
    index = open_index(tmp_path / "index")
    index.warm_up(minilm)
    query = "How does a volcano erupt?"
    with query_threads():  # the reference on the same thread count: another count rounds differently (~1e-7)
        vector = minilm.encode_queries([query])[0]
    everything = index.store.collection.query(query_embeddings=vector[None, :], n_results=index.store.count(),
                                              include=["distances"])
    calls: list[tuple[list[str], int]] = []
    encode = minilm.encode_queries

    def counting(texts, instruction=None, **kwargs):
        calls.append((list(texts), torch.get_num_threads()))
        return encode(texts, instruction=instruction, **kwargs)

    monkeypatch.setattr(minilm, "encode_queries", counting)
    process_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        dense = index.retriever("dense", minilm).search(query, k=10_000)
        hybrid = index.retriever("hybrid", minilm).search(query, k=3)
        assert torch.get_num_threads() == 2  # restored after the query's forward pass
    finally:
        torch.set_num_threads(process_threads)
    assert dense.ids == everything["ids"][0] and len(dense.hits) == len(index.chunks)
    assert [h.score for h in dense.hits] == pytest.approx([1 - d for d in everything["distances"][0]])
    assert calls == [([query], QUERY_THREADS)]  # hybrid reused the dense search's vector
    assert hybrid.hits[0].doc_id == "volcano.html"
    with pytest.raises(ValueError):
        index.query_vector(minilm, query)[0] = 0.0  # the remembered vector is read-only
    index.forget_query_vectors()
    assert index.retriever("dense", minilm).search(query, k=3).ids == dense.ids[:3] and len(calls) == 2


def test_rebuilding_a_deleted_index_in_the_same_process(topic_corpus, minilm, tmp_path):
    # Chroma caches its store per path in-process; a deleted and rebuilt index must still be writable.
    import shutil

    first = build(topic_corpus, minilm, tmp_path / "index")
    shutil.rmtree(tmp_path / "index")
    second = build(topic_corpus, minilm, tmp_path / "index")
    assert second.embedded == first.total and open_index(tmp_path / "index").store.count() == first.total


def test_query_embedder_with_another_signature_is_refused(topic_corpus, minilm, tiny_mistral_dir, tmp_path):
    from embedder import load_embedder

    build(topic_corpus, minilm, tmp_path / "index")
    index = open_index(tmp_path / "index")
    with pytest.raises(IndexMismatchError, match="built with embedder"):
        index.retriever("dense", load_embedder(str(tiny_mistral_dir)))
    assert index.retriever("bm25").search("bread", 1).hits  # BM25 needs no embedder


def test_query_longer_than_the_window_is_noted(topic_corpus, minilm, tmp_path):
    build(topic_corpus, minilm, tmp_path / "index")
    result = open_index(tmp_path / "index").retriever("dense", minilm).search("volcano " * 600, 3)
    assert result.hits and any("first 256" in note for note in result.notes)


def test_bad_corpus_and_bad_index_dirs_give_clear_errors(topic_corpus, minilm, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no readable documents"):
        build(tmp_path / "empty", minilm, tmp_path / "i1")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(IndexStoreError, match="not a linqrag index"):
        build(topic_corpus, minilm, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    with pytest.raises(IndexStoreError, match="no index at"):
        open_index(tmp_path / "never-built")

    build(topic_corpus, minilm, tmp_path / "index")
    (tmp_path / "index" / "chroma" / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    damaged = open_index(tmp_path / "index")  # Chroma is opened on first use: BM25 still answers
    assert damaged.retriever("bm25").search("steam locomotives", 1).hits
    with pytest.raises(IndexStoreError, match="cannot be opened"):
        damaged.retriever("dense", minilm).search("steam locomotives", 1)
    with pytest.raises(IndexStoreError, match="cannot be opened"):
        open_index(tmp_path / "index").stats()


def test_llamaindex_retriever_and_vector_store(topic_corpus, minilm, tmp_path):
    from llama_index.core import VectorStoreIndex

    from embedder import LinqragEmbedding
    from indexing.llamaindex import LinqragRetriever, chroma_vector_store

    build(topic_corpus, minilm, tmp_path / "index")
    index = open_index(tmp_path / "index")
    ours = index.retriever("dense", minilm).search("honey bees", 3)
    nodes = LinqragRetriever(index.retriever("dense", minilm), k=3).retrieve("honey bees")
    assert [n.node.node_id for n in nodes] == ours.ids
    li = VectorStoreIndex.from_vector_store(chroma_vector_store(index), embed_model=LinqragEmbedding(minilm))
    li_nodes = li.as_retriever(similarity_top_k=3).retrieve("honey bees")
    assert [n.node.node_id for n in li_nodes] == ours.ids


def test_cli_build_search_stats(topic_corpus, tmp_path):
    env = {**os.environ}
    index_dir = str(tmp_path / "index")
    out = subprocess.run(_cli("build", "--corpus", str(topic_corpus), "--embedder", "minilm", "--index-dir", index_dir,
                              "--no-progress"), cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert "embedded" in out.splitlines()[-1] and "kept 0, removed 0" in out
    again = subprocess.run(_cli("build", "--corpus", str(topic_corpus), "--embedder", "minilm", "--index-dir",
                                index_dir, "--no-progress"), cwd=ROOT, env=env, capture_output=True, text=True,
                           check=True).stdout
    assert again.splitlines()[-1].startswith("embedded 0 new chunks, kept ")
    found = subprocess.run(_cli("search", "bread dough yeast", "--retriever", "hybrid", "-k", "2", "--json",
                                "--index-dir", index_dir),
                           cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    hits = json.loads(found.stdout)
    assert hits[0]["doc_id"] == "bread.txt" and len(hits) == 2
    stats = subprocess.run(_cli("stats", "--json", "--index-dir", index_dir), cwd=ROOT, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert json.loads(stats)["documents"] == 7
    bad = subprocess.run(_cli("search", "x", "--index-dir", str(tmp_path / "nothing")), cwd=ROOT, env=env,
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: no index at") and "Traceback" not in bad.stderr
    for sub in ("build", "search", "stats"):
        helped = subprocess.run(_cli(sub, "--help"), cwd=ROOT, capture_output=True, text=True, check=True).stdout
        assert "--index-dir" in helped
