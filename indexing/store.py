"""The on-disk layout of an index directory and the Chroma collection in it.

    INDEX_DIR/linqrag-index.json           marker: this directory is a linqrag index
    INDEX_DIR/chroma/                      Chroma PersistentClient (one collection per corpus x embedder)
    INDEX_DIR/indexes/KEY/manifest.json    files, digests, chunk ids, embedder signature
    INDEX_DIR/indexes/KEY/chunks.jsonl     chunk records (text, offsets, source)
    INDEX_DIR/indexes/KEY/bm25/            bm25s index over the same chunks
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from indexing.errors import IndexMismatchError, IndexPermissionError, IndexStoreError
from indexing.records import Chunk
from linqrag.files import write_json_atomic
from linqrag.settings import apply_offline_env

log = logging.getLogger(__name__)

MARKER = "linqrag-index.json"
FORMAT_VERSION = 1


#: errno values that mean "not allowed", as opposed to "not there" or "damaged"
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
#: what Chroma (SQLite underneath) says when it may not write its files
_CHROMA_PERMISSION_WORDS = ("readonly database", "read-only file system", "permission denied")
_NEEDS = {
    "write": "building needs it, and so does a dense search (Chroma writes to chroma.sqlite3 when it opens): "
             "give this user write access, or copy the index to a writable folder and pass that",
    "read": "give this user read access to it",
}


def permission_message(folder: Path, need: str, read_only_fs: bool) -> str:
    """One line naming the folder and the permission missing (``need``: ``read`` or ``write``)."""
    why = "a read-only file system" if read_only_fs else "permission denied"
    return f"no {need} permission on the index folder {folder} ({why}); {_NEEDS[need]}"


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def as_permission_error(error: BaseException, folder: Path, need: str) -> IndexPermissionError | None:
    """``error`` as :class:`IndexPermissionError` when it is a permission fault (an ``OSError`` with
    EACCES, EPERM or EROFS, or Chroma's "readonly database"), else None."""
    if isinstance(error, IndexPermissionError):
        return error
    if isinstance(error, OSError) and error.errno in PERMISSION_ERRNOS:
        return IndexPermissionError(permission_message(folder, need, error.errno == errno.EROFS))
    if not isinstance(error, OSError) and any(w in str(error).lower() for w in _CHROMA_PERMISSION_WORDS):
        return IndexPermissionError(permission_message(folder, need, _read_only_fs(folder)))
    return None


@contextmanager
def permission_faults(folder: Path, need: str) -> Iterator[None]:
    """Turn a permission fault raised in the body into one :class:`IndexPermissionError` on ``folder``."""
    try:
        yield
    except Exception as error:
        converted = as_permission_error(error, folder, need)
        if converted is None or converted is error:
            raise
        raise converted from error


def check_access(folder: Path, need: str) -> None:
    """Refuse ``folder`` (when it exists) unless this process may ``need`` (``read``/``write``) it.

    ``os.access`` answers for this process's user and for a read-only mount, so root on a read-only
    mount is refused too; it is asked before Chroma, whose own errors say "delete and build again"."""
    mode = os.R_OK | os.X_OK | (os.W_OK if need == "write" else 0)
    with permission_faults(folder, need):
        if folder.exists() and not os.access(folder, mode):
            read_only = need == "write" and os.access(folder, os.R_OK | os.X_OK) and _read_only_fs(folder)
            raise IndexPermissionError(permission_message(folder, need, read_only))


def index_key(corpus_name: str, signature: str) -> str:
    """Chroma-safe name for (corpus, embedder signature)."""
    safe = re.sub(r"[^a-zA-Z0-9._-]+", "-", corpus_name).strip("-._")[:40] or "corpus"
    return f"{safe}-{hashlib.sha256(signature.encode()).hexdigest()[:10]}"


def read_chunks(path: Path) -> dict[str, Chunk]:
    """The chunk records by id; a damaged file raises :class:`IndexStoreError` (``build`` repairs it)."""
    if not path.exists():
        return {}
    chunks: dict[str, Chunk] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        chunk = Chunk(**json.loads(line))
                    except (json.JSONDecodeError, TypeError) as error:
                        raise IndexStoreError(f"{path} is damaged at line {number} ({error}); "
                                              "run build again to repair it") from error
                    chunks[chunk.chunk_id] = chunk
    except UnicodeDecodeError as error:
        raise IndexStoreError(f"{path} is damaged (not UTF-8 text); run build again to repair it") from error
    return chunks


def stored_vector_count(chroma_dir: Path, key: str) -> int | None:
    """How many vectors collection ``key`` holds, read from ``chroma.sqlite3`` opened read-only,
    so ``stats`` leaves the file as it was (Chroma's engine records every client open in it).
    ``None`` where the file's layout is not the one this reads (another Chroma version): ask Chroma."""
    import sqlite3

    path = chroma_dir / "chroma.sqlite3"
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT COUNT(*) FROM embeddings e JOIN segments s ON e.segment_id = s.id "
                "JOIN collections c ON s.collection = c.id WHERE c.name = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def check_index_dir(index_dir: Path, create: bool) -> None:
    """Refuse a directory that holds something other than a linqrag index, or one this process may
    not read (or, with ``create``, write)."""
    with permission_faults(index_dir, "read"):
        if index_dir.exists() and not index_dir.is_dir():
            raise IndexStoreError(f"{index_dir} is a file, not an index directory; choose another --index-dir")
    need = "write" if create else "read"
    check_access(index_dir, need)
    with permission_faults(index_dir, need):
        _check_marker(index_dir, create)


def _check_marker(index_dir: Path, create: bool) -> None:
    marker = index_dir / MARKER
    if marker.exists():
        try:
            info = json.loads(marker.read_text())
        except json.JSONDecodeError as error:
            raise IndexStoreError(f"{marker} is corrupt ({error.msg}); delete {index_dir} and build again") from error
        if info.get("format") != FORMAT_VERSION:
            raise IndexStoreError(f"{index_dir} holds index format {info.get('format')}, this linqrag reads "
                                  f"{FORMAT_VERSION}")
        return
    if index_dir.exists() and any(index_dir.iterdir()):
        raise IndexStoreError(
            f"{index_dir} is not empty and is not a linqrag index (no {MARKER}); choose another --index-dir"
        )
    if not create:
        raise IndexStoreError(f"no index at {index_dir}: build one with `python -m indexing build --corpus DIR`")
    index_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, {"format": FORMAT_VERSION})


def _forget_stale_system(chroma_dir: Path, fresh: bool = False) -> None:
    """Drop Chroma's in-process cache for a store whose files were deleted, or (``fresh``) for one
    another process has written since this process opened it.

    Chroma keeps one System per persist path for the life of the process; if the directory was
    removed and is being recreated (a fresh build at the same path), the cached System still
    holds the old, deleted SQLite file and every write fails as "readonly database". And a System
    keeps the HNSW graph it loaded: vectors a build in another process added or deleted stay
    unseen by it (chromadb 1.5), so a reader of a newer build needs a System of its own. That one
    is only forgotten, not stopped: searches that began on the older build finish on it.
    """
    deleted = not (chroma_dir / "chroma.sqlite3").exists()
    if not (deleted or fresh):
        return
    from chromadb.api.shared_system_client import SharedSystemClient

    key = str(chroma_dir)
    system = SharedSystemClient._identifier_to_system.pop(key, None)
    SharedSystemClient._identifier_to_refcount.pop(key, None)
    if system is not None and deleted:
        try:
            system.stop()
        except Exception:  # the files under it are gone already; nothing to flush
            log.debug("stopping the stale Chroma system of %s failed", key, exc_info=True)


class VectorStore:
    """One Chroma collection, cosine space; embeddings always come from us, never from Chroma.

    Embedded (a ``PersistentClient`` in ``INDEX_DIR/chroma``) or, with ``url``, in a Chroma server
    (``chromadb.HttpClient``; see :mod:`indexing.remote`), through the same calls.
    """

    def __init__(self, index_dir: Path, key: str, signature: str, create: bool = True, url: str | None = None,
                 fresh: bool = False) -> None:
        """``fresh``: read the store as it is on disk now, not as this process first loaded it
        (a server switching to a build another process wrote)."""
        apply_offline_env()
        if not url:  # Chroma writes to its SQLite file even to search: refuse early, naming the folder
            check_access(index_dir / "chroma", "write")
        import chromadb
        from chromadb.config import Settings

        self.url = url
        where = url or str(index_dir / "chroma")
        try:
            if url:
                from indexing.chroma_client import http_client

                self.client = http_client(url)
            else:
                _forget_stale_system(index_dir / "chroma", fresh)
                self.client = chromadb.PersistentClient(
                    path=str(index_dir / "chroma"), settings=Settings(anonymized_telemetry=False)
                )
            if create:
                def open_collection():
                    return self.client.get_or_create_collection(
                        key, configuration={"hnsw": {"space": "cosine"}}, metadata={"signature": signature},
                        embedding_function=None,
                    )
            else:
                def open_collection():
                    return self.client.get_collection(key, embedding_function=None)
            self.collection = self._call("opening the collection", open_collection)
        except IndexStoreError:  # a server that did not answer, said so by _call
            raise
        except Exception as error:  # chromadb raises many types for a damaged store
            if not url and (denied := as_permission_error(error, index_dir / "chroma", "write")):
                raise denied from error
            raise IndexStoreError(
                f"the vector store in {where} cannot be opened ({error.__class__.__name__}: {error}); "
                + ("build the index on that server first" if url else "delete the index directory and build again")
            ) from error
        stored = (self.collection.metadata or {}).get("signature")
        if stored is not None and stored != signature:
            raise IndexMismatchError(f"collection {key} was built with {stored}, not {signature}")
        self.max_batch = max(1, min(self._call("asking its batch size", self.client.get_max_batch_size), 5000))

    def _call(self, doing: str, fn):
        """``fn()``; a server that stopped answering becomes one clear :class:`IndexStoreError`."""
        if not self.url:
            return fn()
        from indexing.chroma_client import call_server

        return call_server(self.url, doing, fn)

    def ids(self) -> set[str]:
        return set(self._call("listing stored ids", lambda: self.collection.get(include=[]))["ids"])

    def count(self) -> int:
        return self._call("counting vectors", self.collection.count)

    def upsert(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        for i in range(0, len(chunks), self.max_batch):
            part = chunks[i : i + self.max_batch]
            self._call("storing vectors", lambda part=part, i=i: self.collection.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=vectors[i : i + self.max_batch],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],
            ))

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), self.max_batch):
            self._call("deleting stale vectors", lambda i=i: self.collection.delete(ids=ids[i : i + self.max_batch]))

    def query(self, vector: np.ndarray, k: int, ids: list[str] | None = None) -> list[tuple[str, float]]:
        """Top ``k`` ``(chunk_id, cosine similarity)``, among ``ids`` only when given.

        Chroma restricts the search to ``ids`` itself (its own pre-filter), so ``min(k, len(ids))``
        hits come back however few of the collection they are. Asked for more than it holds,
        Chroma returns all it has (chromadb 1.5), so there is no ``count()`` first: that was a
        SQLite query on every search, 2-6 ms of a 25 ms dense search on SciFact. Only ids and
        distances are asked for; text and metadata come from the index's in-memory chunk records.
        """
        n = k if ids is None else min(k, len(ids))
        if n <= 0:
            return []
        restrict = {} if ids is None else {"ids": ids}
        result = self._call("searching", lambda: self.collection.query(
            query_embeddings=vector[None, :], n_results=n, include=["distances"], **restrict))
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=False)]
