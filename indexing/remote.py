"""An index whose vectors live in a Chroma server (``--chroma-url``, ``LINQRAG_CHROMA_URL``).

Several app processes on several machines must see one consistent index, so with a server the
server is the record of everything: each chunk's vector, text and metadata in the index's
collection (as in the embedded store), and each finished build's manifest as one record of the
``linqrag-manifests`` collection, written last, after every vector is in. A reader lists the
manifests on the server; its local index directory only caches what is derived from them (the
chunk records and the BM25 index, under ``INDEX_DIR/remote/HOST-PORT/``), rebuilt from the
collection whenever the server's manifest is newer than the cached one. Deleting the cache loses
nothing.

A server that goes down mid-build loses nothing either: every batch upserted before stays on the
server, the manifest of the previous build stays the published one, and the build run again embeds
only what the server lacks.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from indexing.bm25 import BM25Index
from indexing.manifest import Manifest
from indexing.records import Chunk
from indexing.store import IndexStoreError, write_chunks_atomic

#: The collection holding one manifest per index key (document: the manifest as JSON).
MANIFESTS = "linqrag-manifests"
#: Records asked for per ``get`` when the chunk records are pulled from the server.
PAGE = 2000
#: Environment variable with a token sent as ``Authorization: Bearer ...`` (never logged).
TOKEN_ENV = "LINQRAG_CHROMA_TOKEN"

T = TypeVar("T")


def parse_chroma_url(url: str) -> tuple[str, int, bool]:
    """``(host, port, ssl)`` of ``http[s]://HOST[:PORT]``; a clear error for anything else."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise IndexStoreError(f"--chroma-url {url!r} is not an http(s)://HOST:PORT address")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    except ValueError as error:
        raise IndexStoreError(f"--chroma-url {url!r}: {error}") from error
    return parsed.hostname, port, parsed.scheme == "https"


def cache_home(index_dir: Path, url: str, key: str) -> Path:
    """Where a reader caches the chunk records and BM25 of one server index."""
    host, port, _ = parse_chroma_url(url)
    return index_dir / "remote" / re.sub(r"[^A-Za-z0-9._-]+", "-", f"{host}-{port}") / "indexes" / key


def server_error(url: str, error: Exception, doing: str) -> IndexStoreError:
    return IndexStoreError(
        f"the Chroma server at {url} did not answer while {doing} ({error.__class__.__name__}: {error}); "
        "nothing stored before is lost: start the server (`chroma run --path DIR --port N`) and run again"
    )


def is_connection_error(error: Exception) -> bool:
    import httpx

    return isinstance(error, httpx.TransportError) or (
        isinstance(error, ValueError) and "Could not connect" in str(error))


def call_server(url: str, doing: str, fn: Callable[[], T]) -> T:
    """``fn()``, with a lost connection turned into one clear :class:`IndexStoreError`."""
    try:
        return fn()
    except IndexStoreError:
        raise
    except Exception as error:
        if is_connection_error(error):
            raise server_error(url, error, doing) from error
        raise


def http_client(url: str):
    """A ``chromadb.HttpClient`` for ``url`` (telemetry off; a token from ``LINQRAG_CHROMA_TOKEN``),
    one per server and token for the process: making one costs a round trip (~60 ms on loopback),
    and listing the indexes, opening one and building all ask for it."""
    return _client(url, os.environ.get(TOKEN_ENV))


@functools.lru_cache(maxsize=8)
def _client(url: str, token: str | None):
    import chromadb
    from chromadb.config import Settings

    host, port, ssl = parse_chroma_url(url)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return call_server(url, "connecting", lambda: chromadb.HttpClient(
        host=host, port=port, ssl=ssl, headers=headers, settings=Settings(anonymized_telemetry=False)))


def _manifests(client, url: str):
    return call_server(url, "opening the manifests", lambda: client.get_or_create_collection(
        MANIFESTS, metadata={"linqrag": "manifests"}, embedding_function=None))


def publish_manifest(client, url: str, key: str, manifest: Manifest) -> None:
    """Make a finished build visible to every reader (one upsert: readers see the old or the new)."""
    collection = _manifests(client, url)
    record = json.dumps(manifest.to_json())
    call_server(url, "publishing the manifest", lambda: collection.upsert(
        ids=[key], embeddings=[[0.0]], documents=[record], metadatas=[{"built_at": manifest.built_at}]))


def server_manifests(client, url: str) -> dict[str, Manifest]:
    """Every published manifest on the server, by index key (an unreadable one is skipped)."""
    collection = _manifests(client, url)
    got = call_server(url, "listing the indexes", lambda: collection.get(include=["documents"]))
    out = {}
    for key, text in zip(got["ids"], got["documents"], strict=False):
        try:
            out[key] = Manifest(**json.loads(text))
        except (TypeError, ValueError):
            continue
    return out


def pull_chunks(collection, url: str, manifest: Manifest) -> list[Chunk]:
    """The manifest's chunk records from the server, in build order (what BM25 rows follow)."""
    order = [cid for info in manifest.files.values() for cid in info["chunks"]]
    found: dict[str, Chunk] = {}
    for start in range(0, len(order), PAGE):
        ids = order[start : start + PAGE]
        got = call_server(url, "reading chunk records", lambda ids=ids: collection.get(
            ids=ids, include=["documents", "metadatas"]))
        for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=False):
            meta = meta or {}
            found[cid] = Chunk(cid, str(meta.get("doc_id", cid)), text or "", str(meta.get("title", "")),
                               str(meta.get("source", "")), int(meta.get("start", 0)), int(meta.get("end", 0)))
    return [found[c] for c in order if c in found]


def sync_cache(home: Path, manifest: Manifest, collection, url: str) -> None:
    """Bring the local cache of one server index up to ``manifest`` (a no-op when it is current)."""
    cached_path = home / "manifest.json"
    try:
        cached = Manifest.load(cached_path)
    except IndexStoreError:
        cached = None
    if (cached is not None and cached.built_at == manifest.built_at and (home / "chunks.jsonl").exists()
            and (home / "bm25").exists()):
        return
    chunks = pull_chunks(collection, url, manifest)
    home.mkdir(parents=True, exist_ok=True)
    write_chunks_atomic(home / "chunks.jsonl", chunks)
    BM25Index.build([c.chunk_id for c in chunks], [c.indexed_text for c in chunks],
                    show_progress=False).save(home / "bm25")
    manifest.write(cached_path)
