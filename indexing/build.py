"""``build_index``: documents -> chunks -> embeddings in Chroma + BM25, incrementally.

Chroma is the record of what is embedded. A build chunks every document (reusing the chunks of
files whose digest did not change), embeds only chunk ids Chroma lacks, deletes ids no document
produces any more, then rewrites the chunk store, BM25 and the manifest atomically. A build killed
at any point and run again therefore ends in the state of an uninterrupted build.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from corpora import CorpusError, load_corpus
from corpora.records import Document, LoadReport, Skipped
from embedder.model import TransformerEmbedder
from indexing.bm25 import BM25Index
from indexing.chunking import ChunkConfig, chunk_documents, default_chunk_config, token_counter
from indexing.lock import writer_lock
from indexing.manifest import Manifest
from indexing.records import BuildReport, Chunk
from indexing.remote import cache_home, publish_manifest, server_manifests, sync_cache
from indexing.store import (
    IndexStoreError,
    VectorStore,
    check_index_dir,
    index_key,
    read_chunks,
    write_chunks_atomic,
)
from linqrag import settings

log = logging.getLogger(__name__)

#: Chunks embedded and written to Chroma per step; each step is durable on its own.
UPSERT_BATCH = 256


def doc_digest(doc: Document) -> str:
    return hashlib.sha256(f"{doc.title}\x00{doc.text}".encode()).hexdigest()[:24]


def build_index(
    corpus: str | Path,
    embedder: TransformerEmbedder,
    index_dir: str | Path,
    name: str | None = None,
    chunk_config: ChunkConfig | None = None,
    batch_size: int | None = None,
    upsert_batch: int = UPSERT_BATCH,
    show_progress: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    chroma_url: str | None = None,
    wait_for_lock: float = 0.0,
) -> BuildReport:
    """Index ``corpus`` into ``index_dir`` with ``embedder``; ``upsert_batch`` chunks are embedded
    and committed to Chroma per step (the most a killed build can lose). ``progress(stage, done,
    total)`` is called as chunking and embedding advance (the app draws its bar from it).
    ``chroma_url`` (default ``LINQRAG_CHROMA_URL``) keeps the vectors in a Chroma server; the
    manifest is then published there too and ``index_dir`` only caches (:mod:`indexing.remote`).
    One build writes to an index directory at a time (:mod:`indexing.lock`); another waits
    ``wait_for_lock`` seconds for it, then stops with :class:`~indexing.lock.IndexBusyError`."""
    report_progress = progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise CorpusError(f"corpus {corpus} is not a directory")
    report = load_corpus(corpus)
    if not report.documents:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:10]) or "the directory is empty"
        raise CorpusError(f"no readable documents in {corpus} ({reasons})")

    index_dir = Path(index_dir)
    check_index_dir(index_dir, create=True)
    with writer_lock(index_dir, wait_for_lock, what=f"build of {corpus.name}"):
        return _build_locked(corpus, report, embedder, index_dir, name, chunk_config, batch_size, upsert_batch,
                             show_progress, report_progress, chroma_url, t0)


def _build_locked(corpus: Path, report: LoadReport, embedder, index_dir: Path, name: str | None,
                  chunk_config: ChunkConfig | None, batch_size: int | None, upsert_batch: int, show_progress: bool,
                  report_progress: Callable[[str, int, int], None], chroma_url: str | None, t0: float) -> BuildReport:
    """The build itself, under the index directory's write lock."""
    name = name or corpus.resolve().name
    key = index_key(name, embedder.signature)
    url = chroma_url or settings.chroma_url()
    home = cache_home(index_dir, url, key) if url else index_dir / "indexes" / key
    home.mkdir(parents=True, exist_ok=True)
    manifest_path = home / "manifest.json"
    config = chunk_config or default_chunk_config(embedder.max_length)
    repairs: list[str] = []
    store = None
    if url:  # start from what the server publishes, not from whatever this machine cached
        store = VectorStore(index_dir, key, embedder.signature, url=url)
        published = server_manifests(store.client, url).get(key)
        if published is not None:
            sync_cache(home, published, store.collection, url)

    try:
        old = Manifest.load(manifest_path)
    except IndexStoreError as error:
        repairs.append(f"{manifest_path.name} was damaged: rebuilt it from the corpus")
        log.warning("%s; re-chunking everything (Chroma still holds the embeddings)", error)
        old = None
    try:
        old_chunks = read_chunks(home / "chunks.jsonl") if old and old.chunk_config == config.to_json() else {}
    except IndexStoreError as error:  # re-chunked below; vectors are reused by chunk id
        repairs.append("chunks.jsonl was damaged: re-chunked the corpus")
        log.warning("%s; re-chunking everything (Chroma still holds the embeddings)", error)
        old_chunks = {}

    # 1. chunk: unchanged documents keep their chunks
    chunks: list[Chunk] = []
    files: dict[str, dict] = {}
    to_chunk: list[Document] = []
    for doc in report.documents:
        digest = doc_digest(doc)
        previous = old.files.get(doc.doc_id) if old and old_chunks else None
        if previous and previous["digest"] == digest and all(c in old_chunks for c in previous["chunks"]):
            chunks.extend(old_chunks[c] for c in previous["chunks"])
            files[doc.doc_id] = previous
        else:
            to_chunk.append(doc)
    if to_chunk:
        tokenize = token_counter(embedder.tokenizer)
        digests = {d.doc_id: doc_digest(d) for d in to_chunk}
        for n, doc in enumerate(tqdm(to_chunk, desc="chunk", unit="doc", disable=not show_progress or len(to_chunk) < 50)):
            report_progress("chunk", n, len(to_chunk))
            try:
                new = chunk_documents([doc], config, tokenize)
            except (TimeoutError, ValueError, RecursionError) as error:  # one unsplittable text, not the build
                report.skipped.append(Skipped(doc.doc_id, f"could not be chunked ({error.__class__.__name__}: {error})"))
                continue
            chunks.extend(new)
            files[doc.doc_id] = {"digest": digests[doc.doc_id], "chunks": [c.chunk_id for c in new]}

    # 2. reconcile with what Chroma holds
    store = store or VectorStore(index_dir, key, embedder.signature)
    existing = store.ids()
    wanted = {c.chunk_id for c in chunks}
    missing = [c for c in chunks if c.chunk_id not in existing]
    stale = existing - wanted

    # 3. embed and store what is missing, a durable batch at a time
    report_progress("embed", 0, len(missing))
    with tqdm(total=len(missing), desc="embed", unit="chunk", disable=not show_progress or not missing) as bar:
        for i in range(0, len(missing), upsert_batch):
            part = missing[i : i + upsert_batch]
            vectors = embedder.encode_documents([c.indexed_text for c in part], batch_size=batch_size)
            store.upsert(part, vectors)
            bar.update(len(part))
            report_progress("embed", i + len(part), len(missing))
            log.info("upserted %d/%d chunks", i + len(part), len(missing))
    if stale:
        store.delete(stale)

    # 4. chunk store, BM25 and manifest, each replaced atomically; the manifest last
    changed = bool(missing or stale) or old is None or not (home / "bm25").exists()
    if changed or set(old_chunks) != wanted:
        write_chunks_atomic(home / "chunks.jsonl", chunks)
        BM25Index.build([c.chunk_id for c in chunks], [c.indexed_text for c in chunks], show_progress=False).save(home / "bm25")
    manifest = Manifest(
        corpus=name, corpus_path=str(corpus.resolve()), signature=embedder.signature, embedder=embedder.name,
        chunk_config=config.to_json(), files=files, chunk_count=len(chunks),
        adapter=embedder.loaded_from.adapter_path, max_length=embedder.max_length,
    )
    manifest.save(manifest_path)
    if url:
        publish_manifest(store.client, url, key, manifest)

    return BuildReport(
        index_key=key, embedded=len(missing), kept=len(chunks) - len(missing), removed=len(stale),
        documents=len(report.documents), skipped=list(report.skipped), notes=[*report.notes, *repairs],
        seconds=time.perf_counter() - t0,
    )
