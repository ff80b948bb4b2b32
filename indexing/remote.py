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

import json
import re
from pathlib import Path

from indexing.bm25 import BM25Index
from indexing.chroma_client import call_server, parse_chroma_url
from indexing.errors import IndexStoreError
from indexing.manifest import Manifest
from indexing.records import Chunk
from linqrag.files import write_jsonl_atomic

#: The collection holding one manifest per index key (document: the manifest as JSON).
MANIFESTS = "linqrag-manifests"
#: Records asked for per ``get`` when the chunk records are pulled from the server.
PAGE = 2000


def cache_home(index_dir: Path, url: str, key: str) -> Path:
    """Where a reader caches the chunk records and BM25 of one server index."""
    host, port, _ = parse_chroma_url(url)
    return index_dir / "remote" / re.sub(r"[^A-Za-z0-9._-]+", "-", f"{host}-{port}") / "indexes" / key


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
    write_jsonl_atomic(home / "chunks.jsonl", chunks)
    BM25Index.build([c.chunk_id for c in chunks], [c.indexed_text for c in chunks],
                    show_progress=False).save(home / "bm25")
    manifest.write(cached_path)
