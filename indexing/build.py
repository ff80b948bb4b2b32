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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    permission_faults,
    read_chunks,
)
from linqrag import settings
from linqrag.files import write_jsonl_atomic

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
    job = BuildJob(corpus, report, embedder, index_dir, name or corpus.resolve().name,
                   chunk_config or default_chunk_config(embedder.max_length), batch_size, upsert_batch,
                   show_progress, progress or _no_progress, chroma_url or settings.chroma_url(), t0)
    with writer_lock(index_dir, wait_for_lock, what=f"build of {corpus.name}"), permission_faults(index_dir, "write"):
        return _build_locked(job)


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class BuildJob:
    """One build's inputs, resolved: what :func:`build_index` was asked, with its defaults filled in."""

    corpus: Path
    loaded: LoadReport
    embedder: TransformerEmbedder
    index_dir: Path
    name: str
    chunk_config: ChunkConfig
    batch_size: int | None
    upsert_batch: int
    show_progress: bool
    progress: Callable[[str, int, int], None]
    chroma_url: str | None  #: None: the embedded store
    started: float  #: ``time.perf_counter()`` when the build was asked for

    @property
    def key(self) -> str:
        return index_key(self.name, self.embedder.signature)

    @property
    def home(self) -> Path:
        """Where this index's chunk records, BM25 and manifest live (a cache when the store is a server)."""
        if self.chroma_url:
            return cache_home(self.index_dir, self.chroma_url, self.key)
        return self.index_dir / "indexes" / self.key


@dataclass
class Previous:
    """What an earlier build left: its manifest and chunk records (empty when unusable), and repairs made."""

    manifest: Manifest | None
    chunks: dict[str, Chunk]
    repairs: list[str]


def _build_locked(job: BuildJob) -> BuildReport:
    """The build itself, under the index directory's write lock."""
    home = job.home
    home.mkdir(parents=True, exist_ok=True)
    store = None
    if job.chroma_url:  # start from what the server publishes, not from whatever this machine cached
        store = VectorStore(job.index_dir, job.key, job.embedder.signature, url=job.chroma_url)
        published = server_manifests(store.client, job.chroma_url).get(job.key)
        if published is not None:
            sync_cache(home, published, store.collection, job.chroma_url)
    previous = _read_previous(home, job.chunk_config)
    chunks, files = _chunk_changed(job, previous)
    store = store or VectorStore(job.index_dir, job.key, job.embedder.signature)
    embedded, removed = _reconcile_vectors(job, store, chunks)
    wanted = {c.chunk_id for c in chunks}
    # chunk store, BM25 and manifest, each replaced atomically; the manifest last
    changed = bool(embedded or removed) or previous.manifest is None or not (home / "bm25").exists()
    if changed or set(previous.chunks) != wanted:
        write_jsonl_atomic(home / "chunks.jsonl", chunks)
        BM25Index.build([c.chunk_id for c in chunks], [c.indexed_text for c in chunks],
                        show_progress=False).save(home / "bm25")
    embedder = job.embedder
    manifest = Manifest(
        corpus=job.name, corpus_path=str(job.corpus.resolve()), signature=embedder.signature, embedder=embedder.name,
        chunk_config=job.chunk_config.to_json(), files=files, chunk_count=len(chunks),
        adapter=embedder.loaded_from.adapter_path, max_length=embedder.max_length,
        backend=getattr(embedder, "backend", "torch"),
    )
    manifest.save(home / "manifest.json")
    if job.chroma_url:
        publish_manifest(store.client, job.chroma_url, job.key, manifest)
    return BuildReport(
        index_key=job.key, embedded=embedded, kept=len(chunks) - embedded, removed=removed,
        documents=len(job.loaded.documents), skipped=list(job.loaded.skipped),
        notes=[*job.loaded.notes, *previous.repairs], seconds=time.perf_counter() - job.started,
    )


def _read_previous(home: Path, config: ChunkConfig) -> Previous:
    """The last build's manifest and chunks; damaged files are noted and rebuilt (Chroma keeps the vectors)."""
    manifest_path, repairs = home / "manifest.json", []
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
    return Previous(old, old_chunks, repairs)


def _chunk_changed(job: BuildJob, previous: Previous) -> tuple[list[Chunk], dict[str, dict]]:
    """Every document's chunks: unchanged documents keep theirs, the others are chunked again."""
    chunks: list[Chunk] = []
    files: dict[str, dict] = {}
    to_chunk: list[Document] = []
    digests = {doc.doc_id: doc_digest(doc) for doc in job.loaded.documents}
    for doc in job.loaded.documents:
        before = previous.manifest.files.get(doc.doc_id) if previous.manifest and previous.chunks else None
        unchanged = before and before["digest"] == digests[doc.doc_id]
        if unchanged and all(c in previous.chunks for c in before["chunks"]):
            chunks.extend(previous.chunks[c] for c in before["chunks"])
            files[doc.doc_id] = before
        else:
            to_chunk.append(doc)
    if not to_chunk:
        return chunks, files
    tokenize = token_counter(job.embedder.tokenizer)
    quiet = not job.show_progress or len(to_chunk) < 50
    for n, doc in enumerate(tqdm(to_chunk, desc="chunk", unit="doc", disable=quiet)):
        job.progress("chunk", n, len(to_chunk))
        try:
            new = chunk_documents([doc], job.chunk_config, tokenize)
        except (TimeoutError, ValueError, RecursionError) as error:  # one unsplittable text, not the build
            reason = f"could not be chunked ({error.__class__.__name__}: {error})"
            job.loaded.skipped.append(Skipped(doc.doc_id, reason))
            continue
        chunks.extend(new)
        files[doc.doc_id] = {"digest": digests[doc.doc_id], "chunks": [c.chunk_id for c in new]}
    return chunks, files


def _encode_with_progress(job: BuildJob, part: list[Chunk], done: int, total: int, bar) -> np.ndarray:
    """The part's vectors, encoded a model batch at a time so the progress moves while a part is
    embedded (a 124-chunk build is one upsert part: its bar sat at 0 for most of the build)."""
    step = job.batch_size or getattr(job.embedder, "batch_size", 32) or 32
    vectors = []
    for j in range(0, len(part), step):
        piece = part[j:j + step]
        vectors.append(job.embedder.encode_documents([c.indexed_text for c in piece], batch_size=job.batch_size))
        bar.update(len(piece))
        if j + len(piece) < len(part):  # the part's last step is reported once it is stored
            job.progress("embed", done + j + len(piece), total)
    return np.concatenate(vectors) if vectors else np.zeros((0, job.embedder.dim), dtype=np.float32)


def _reconcile_vectors(job: BuildJob, store: VectorStore, chunks: list[Chunk]) -> tuple[int, int]:
    """Embed and store the chunks Chroma lacks, a durable batch at a time, and delete ids no
    document produces any more; returns ``(embedded, removed)``."""
    existing = store.ids()
    missing = [c for c in chunks if c.chunk_id not in existing]
    stale = existing - {c.chunk_id for c in chunks}
    job.progress("embed", 0, len(missing))
    with tqdm(total=len(missing), desc="embed", unit="chunk", disable=not job.show_progress or not missing) as bar:
        for i in range(0, len(missing), job.upsert_batch):
            # sorted by length: each model batch then pads little, as one call over the part would
            part = sorted(missing[i : i + job.upsert_batch], key=lambda c: len(c.indexed_text))
            store.upsert(part, _encode_with_progress(job, part, i, len(missing), bar))
            job.progress("embed", i + len(part), len(missing))  # stored: what a killed build keeps
            log.info("upserted %d/%d chunks", i + len(part), len(missing))
    if stale:
        store.delete(stale)
    return len(missing), len(stale)
