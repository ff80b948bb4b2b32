"""An opened index (:class:`Index`: manifest, chunk records, Chroma, BM25) and the retrievers it
gives (:meth:`Index.retriever`, by the kinds registered in :mod:`indexing.retrievers`).

Query latency (``bench/index.py``; SciFact's 9,911 chunks, one core): a dense search is the query's
forward pass (~20 ms for a 20-token query through MiniLM on a quiet core), the HNSW search (~2-3 ms)
and little else; BM25 is ~1 ms; chunk text and metadata come from the records held in memory. What
made searches slow was around that: the first search of a process, where Chroma reads the HNSW
segment from disk and torch sets up its kernels (~0.4-0.9 s); a Chroma ``count()`` (a SQLite query,
2-8 ms) before every search; the same query encoded twice when the app's Compare page runs dense
and then hybrid; and torch's intra-op threads on a box whose other core is busy (see
:data:`QUERY_THREADS`). So ``Index.warm_up`` does the loading when the index is opened, the store
asks Chroma for ids and distances only, an index remembers the vectors of recent queries, and a
query is encoded on :data:`QUERY_THREADS` threads.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexing.bm25 import BM25Index
from indexing.filters import FilterError, SearchFilter, matching_ids
from indexing.manifest import Manifest
from indexing.records import Chunk, Hit
from indexing.retrievers import Retriever, RetrieverOptions, retriever_kind
from indexing.selection import Selection
from indexing.store import (
    IndexMismatchError,
    IndexStoreError,
    VectorStore,
    check_index_dir,
    permission_faults,
    read_chunks,
    stored_vector_count,
)
from linqrag import settings

#: Resolved filters an opened index remembers (the app asks the same few again and again; each holds
#: a float32 mask over all chunks).
SELECTIONS_KEPT = 8
#: Query vectors an opened index remembers (384 floats each for MiniLM).
QUERY_VECTORS_KEPT = 256
#: Torch intra-op threads for encoding one query (``LINQRAG_QUERY_THREADS``, default 1). A batch-1
#: forward is ~100 small ops (a few dozen rows each): splitting them over threads gains little even
#: on idle cores, and when another process holds a core each op waits at a barrier for the thread
#: that is not scheduled. The synthetic 50k run in bench/RESULTS.md (torch's default of 2 threads,
#: both cores shared with other jobs) had dense p50 83 ms and p95 994 ms; pinned to one core, 1 and
#: 2 threads time the same (bench/index.py, old vs old-1t). Document encoding keeps the process's count.
QUERY_THREADS = max(1, int(os.environ.get("LINQRAG_QUERY_THREADS") or 1))
#: Held while a query is encoded (and its vector remembered); re-entrant.
_QUERY_LOCK = threading.RLock()
_STORE_LOCK = threading.Lock()  # opens an index's Chroma store once, whichever thread asks first


@contextmanager
def query_threads(n: int | None = None):
    """Run the body (one query's forward pass) on ``n`` torch threads (:data:`QUERY_THREADS`), then
    restore the process's count. ``torch.set_num_threads`` is process-wide and costs microseconds;
    the lock keeps two searches in two threads (Streamlit sessions) from restoring each other's
    count, and serialises their forwards, which on two cores run no faster side by side."""
    import torch

    n = n or QUERY_THREADS
    with _QUERY_LOCK:
        before = torch.get_num_threads()
        if before != n:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if before != n:
                torch.set_num_threads(before)


@dataclass
class Index:
    """An opened index: manifest, chunk records, the Chroma collection and the BM25 index."""

    index_dir: Path
    key: str
    manifest: Manifest
    chunks: dict[str, Chunk]
    #: the Chroma collection, or how to open it: opened on first use, so BM25 searches never start
    #: Chroma (whose engine writes a row to its own lock table in chroma.sqlite3 on every open)
    vector_store: VectorStore | Callable[[], VectorStore]
    bm25: BM25Index
    _selections: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _vectors: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False, compare=False)

    @property
    def store(self) -> VectorStore:
        if not isinstance(self.vector_store, VectorStore):
            with _STORE_LOCK:
                if not isinstance(self.vector_store, VectorStore):
                    self.vector_store = self.vector_store()
        return self.vector_store

    def query_vector(self, embedder, query: str, instruction: str | None = None) -> np.ndarray:
        """The (read-only) query vector, from the last :data:`QUERY_VECTORS_KEPT` queries when seen.

        Keyed by embedder signature, instruction and text: one signature means the same vectors
        (that is what a signature is for). An embedder whose weights change in place under the
        same signature (a training loop) must call :meth:`forget_query_vectors` between steps.
        """
        key = (embedder.signature, instruction, query)
        with _QUERY_LOCK:  # Streamlit sessions share one Index across threads
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
                return vector
            with query_threads():
                vector = embedder.encode_queries([query], instruction=instruction)[0]
            vector.setflags(write=False)
            self._vectors[key] = vector
            while len(self._vectors) > QUERY_VECTORS_KEPT:
                self._vectors.popitem(last=False)
            return vector

    def forget_query_vectors(self) -> None:
        self._vectors.clear()

    def warm_up(self, embedder=None) -> None:
        """Do now what the first search of a process would otherwise pay for: Chroma loads the HNSW
        segment from disk on its first query (~0.3 s at 10k vectors), bm25s and torch set up on
        their first call. Searches one stored vector, one word and, with ``embedder``, encodes one
        query; nothing is kept. The app calls it when it opens an index."""
        stored = self.store.collection.get(limit=1, include=["embeddings"])
        if stored["ids"]:
            self.store.query(np.asarray(stored["embeddings"][0], dtype=np.float32), 1)
        if self.bm25.ids:
            self.bm25.search("index", 1)
        if embedder is not None:
            with query_threads():
                embedder.encode_queries(["warm up"])

    def hits(self, scored: list[tuple[str, float]]) -> list[Hit]:
        out = []
        for rank, (cid, score) in enumerate(scored, 1):
            chunk = self.chunks.get(cid)
            if chunk is not None:
                out.append(Hit(cid, float(score), rank, chunk.text, chunk.metadata()))
        return out

    def select(self, search_filter: SearchFilter | None) -> Selection | None:
        """The chunks ``search_filter`` keeps, decided by ``SearchFilter.matches`` on each document's
        metadata once per filter and index; ``None`` for no filter (or an empty one)."""
        if search_filter is None:
            return None
        if not isinstance(search_filter, SearchFilter):
            raise FilterError(f"filter must be an indexing.SearchFilter, not {type(search_filter).__name__}; "
                              "for example SearchFilter(paths=('docs/',))")
        if not search_filter:
            return None
        selection = self._selections.get(search_filter)
        if selection is None:
            ids = matching_ids(self.chunks.values(), search_filter)
            selection = Selection(search_filter, ids, self.bm25.mask(ids), len(self.chunks))
            if len(self._selections) >= SELECTIONS_KEPT:
                self._selections.clear()
            self._selections[search_filter] = selection
        return selection

    def check_embedder(self, embedder) -> None:
        self.check_signature(embedder.signature)

    def check_signature(self, signature: str | None) -> None:
        """Refuse a query embedder of another ``signature`` (``None``: not known yet, checked on load)."""
        if signature is not None and signature != self.manifest.signature:
            raise IndexMismatchError(
                f"this index was built with embedder {self.manifest.signature}; the query embedder is "
                f"{signature}. Use the same embedder, or build an index for this one."
            )

    def retriever(self, kind: str, embedder=None, instruction: str | None = None,
                  weights: dict[str, float] | None = None, depth: int = 100) -> Retriever:
        """A retriever of the registered ``kind`` (:data:`indexing.retrievers.RETRIEVERS`) over this
        index; a kind that ranks by vectors needs the query ``embedder``, checked against the index."""
        found = retriever_kind(kind)
        if found.needs_embedder:
            if embedder is None:
                raise ValueError(f"the {kind} retriever needs the query embedder")
            self.check_embedder(embedder)
        return found.build(self, embedder if found.needs_embedder else None,
                           RetrieverOptions(instruction, weights, depth))

    def stats(self) -> dict:
        m = self.manifest
        remote = isinstance(self.vector_store, VectorStore) and self.vector_store.url
        vectors = None if remote else stored_vector_count(self.index_dir / "chroma", self.key)
        if vectors is None:
            vectors = self.store.count()
        return {"key": self.key, "corpus": m.corpus, "corpus_path": m.corpus_path, "embedder": m.signature,
                "documents": len(m.files), "chunks": len(self.chunks), "vectors": vectors,
                "consistent": vectors == len(self.chunks) == m.chunk_count,
                "chunk_config": m.chunk_config, "built_at": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                          time.localtime(m.built_at))}


def list_indexes(index_dir: str | Path, chroma_url: str | None = None) -> list[Manifest]:
    """The finished indexes: in ``index_dir``, or published on the Chroma server ``chroma_url``
    (default ``LINQRAG_CHROMA_URL``)."""
    index_dir = Path(index_dir)
    url = chroma_url or settings.chroma_url()
    if url:
        from indexing.chroma_client import http_client
        from indexing.remote import server_manifests

        return sorted(server_manifests(http_client(url), url).values(), key=lambda m: (m.corpus, m.signature))
    check_index_dir(index_dir, create=False)
    out = []
    with permission_faults(index_dir, "read"):
        for path in sorted((index_dir / "indexes").glob("*/manifest.json")):
            manifest = Manifest.load(path)
            if manifest is not None:
                out.append(manifest)
    return out


def published_state(index_dir: str | Path, chroma_url: str | None = None) -> tuple:
    """A token that changes whenever a build is published: each manifest's folder, size and
    modification time, without reading them (a glob and a few ``stat`` calls, cheap to ask every
    second); on a Chroma server, the published ``(corpus, signature, built_at)``."""
    index_dir = Path(index_dir)
    url = chroma_url or settings.chroma_url()
    if url:
        return tuple((m.corpus, m.signature, m.built_at) for m in list_indexes(index_dir, url))
    state = []
    with permission_faults(index_dir, "read"):
        for path in sorted((index_dir / "indexes").glob("*/manifest.json")):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between the glob and the stat
                continue
            state.append((path.parent.name, stat.st_size, stat.st_mtime_ns))
    return tuple(state)


def open_index(index_dir: str | Path, corpus: str | None = None, signature: str | None = None,
               chroma_url: str | None = None, fresh_store: bool = False) -> Index:
    """Open the index for ``corpus`` (and embedder ``signature``); the newest one when not given.

    With a Chroma server (``chroma_url``, default ``LINQRAG_CHROMA_URL``) the manifest comes from
    the server and ``index_dir`` caches the chunk records and BM25, refreshed when a newer build
    was published. ``fresh_store``: read the embedded Chroma store as it is on disk now, not as this
    process first opened it (a long-running reader switching to a build another process wrote)."""
    from indexing.store import index_key

    index_dir = Path(index_dir)
    url = chroma_url or settings.chroma_url()
    candidates = [m for m in list_indexes(index_dir, url)
                  if (corpus is None or m.corpus == corpus) and (signature is None or m.signature == signature)]
    if not candidates:
        wanted = f" for corpus {corpus!r}" if corpus else ""
        wanted += f" and embedder {signature}" if signature else ""
        where = f"on the Chroma server {url}" if url else f"in {index_dir}"
        raise IndexStoreError(f"no finished index{wanted} {where}; build one with `python -m indexing build`")
    manifest = max(candidates, key=lambda m: m.built_at)
    key = index_key(manifest.corpus, manifest.signature)
    if url:
        from indexing.remote import cache_home, sync_cache

        store = VectorStore(index_dir, key, manifest.signature, create=False, url=url)
        check_index_dir(index_dir, create=True)
        home = cache_home(index_dir, url, key)
        sync_cache(home, manifest, store.collection, url)
    else:
        store = functools.partial(VectorStore, index_dir, key, manifest.signature, create=False, fresh=fresh_store)
        home = index_dir / "indexes" / key
    with permission_faults(home, "read"):
        try:
            bm25 = BM25Index.load(home / "bm25")
        except (OSError, ValueError) as error:
            if isinstance(error, PermissionError):
                raise
            raise IndexStoreError(f"the BM25 index in {home} is damaged ({error}); build again") from error
        chunks = read_chunks(home / "chunks.jsonl")
    return Index(index_dir, key, manifest, chunks, store, bm25)
