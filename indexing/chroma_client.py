"""The connection to a Chroma server (``--chroma-url``): the address parsed, one client per server
and token, and a lost connection turned into one clear error.

Below both the store (which opens its collection through it) and :mod:`indexing.remote` (which
publishes and reads manifests through it), so neither imports the other.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse

from indexing.errors import IndexStoreError

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
