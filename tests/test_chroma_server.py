"""The index over a real Chroma server (`chroma run` on a loopback port) behaves as the embedded one."""

from __future__ import annotations

import shutil

import pytest

from indexing import IndexStoreError, build_index, list_indexes, open_index
from indexing.chroma_server import ChromaServer

from .conftest import TOPICS

QUERIES = ["where does magma come from", "queen of the colony", "how do rivers shape valleys", "steam trains"]


@pytest.fixture()
def server(tmp_path):
    with ChromaServer(tmp_path / "chroma-server") as running:
        yield running


def write_corpus(folder, extra: dict[str, str] | None = None):
    folder.mkdir(exist_ok=True)
    for name, text in {**TOPICS, **(extra or {})}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def rankings(index, embedder) -> dict:
    retrievers = {kind: index.retriever(kind, None if kind == "bm25" else embedder)
                  for kind in ("dense", "bm25", "hybrid")}
    return {(kind, q): [h.chunk_id for h in retrievers[kind].search(q, 4).hits] for kind in retrievers for q in QUERIES}


def test_build_rebuild_and_search_through_a_server_match_the_embedded_store(tmp_path, minilm, server):
    corpus = write_corpus(tmp_path / "corpus")
    remote = build_index(corpus, minilm, tmp_path / "cache-a", name="topics", show_progress=False,
                         chroma_url=server.url)
    local = build_index(corpus, minilm, tmp_path / "embedded", name="topics", show_progress=False)
    assert remote.embedded == local.embedded > 0
    # a reader on "another machine": an empty cache directory, everything comes from the server
    reader = open_index(tmp_path / "cache-b", chroma_url=server.url)
    embedded = open_index(tmp_path / "embedded")
    assert reader.stats()["vectors"] == reader.stats()["chunks"] == embedded.stats()["chunks"]
    assert rankings(reader, minilm) == rankings(embedded, minilm)
    assert not (tmp_path / "cache-a" / "chroma").exists()  # no embedded store was made beside the cache
    # llama-index's ChromaVectorStore over the server's collection finds what our dense retriever finds
    from llama_index.core.vector_stores import VectorStoreQuery

    from indexing.llamaindex import chroma_vector_store

    vector = minilm.encode_queries([QUERIES[0]])[0].tolist()
    found = chroma_vector_store(reader).query(VectorStoreQuery(query_embedding=vector, similarity_top_k=3))
    assert found.ids == reader.retriever("dense", minilm).search(QUERIES[0], 3).ids

    # incremental: one file changed, one added; only their chunks are embedded, the reader follows
    (corpus / "rivers.txt").write_text("Glaciers carve valleys into U shapes as the ice moves downhill.",
                                       encoding="utf-8")
    (corpus / "tea.txt").write_text("Green tea is steamed soon after picking, black tea is oxidised first.",
                                    encoding="utf-8")
    again = build_index(corpus, minilm, tmp_path / "cache-a", name="topics", show_progress=False, chroma_url=server.url)
    assert again.embedded == 2 and again.removed == 1
    build_index(corpus, minilm, tmp_path / "embedded", name="topics", show_progress=False)
    reader = open_index(tmp_path / "cache-b", chroma_url=server.url)
    assert "glaciers" in " ".join(c.text.lower() for c in reader.chunks.values())
    assert rankings(reader, minilm) == rankings(open_index(tmp_path / "embedded"), minilm)
    assert [m.corpus for m in list_indexes(tmp_path / "nowhere", chroma_url=server.url)] == ["topics"]


def test_a_server_killed_mid_build_loses_nothing_and_a_rerun_finishes(tmp_path, minilm, server):
    corpus = write_corpus(tmp_path / "corpus", {f"extra-{i}.txt": f"Note {i} about lighthouse number {i} on the coast."
                                                for i in range(10)})

    def kill_after_first_batch(stage, done, total):
        if stage == "embed" and 0 < done < total:
            server.kill()

    with pytest.raises(IndexStoreError, match="did not answer.*run again"):
        build_index(corpus, minilm, tmp_path / "cache", name="topics", show_progress=False, upsert_batch=4,
                    chroma_url=server.url, progress=kill_after_first_batch)
    server.start()  # same path, same port
    with pytest.raises(IndexStoreError, match="no finished index"):
        open_index(tmp_path / "reader", chroma_url=server.url)  # the half build was never published
    report = build_index(corpus, minilm, tmp_path / "cache", name="topics", show_progress=False, chroma_url=server.url)
    assert report.kept == 4 and report.embedded == report.total - 4  # the first batch survived the crash
    stats = open_index(tmp_path / "reader", chroma_url=server.url).stats()
    assert stats["vectors"] == stats["chunks"] == report.total


def test_a_server_that_is_not_running_is_one_clear_error(tmp_path, minilm, server):
    url = server.url
    server.stop()
    shutil.rmtree(tmp_path / "chroma-server")
    with pytest.raises(IndexStoreError, match=f"Chroma server at {url} did not answer"):
        open_index(tmp_path / "cache", chroma_url=url)
    with pytest.raises(IndexStoreError, match="not an http"):
        open_index(tmp_path / "cache", chroma_url="ftp://x")
