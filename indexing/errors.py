"""What can go wrong with an index directory or a Chroma server, as errors a user can fix.

Their own module, at the bottom of ``indexing``, so that the store, the manifest and the server
client all raise them without importing one another.
"""

from __future__ import annotations

from linqrag.errors import LinqragError


class IndexStoreError(LinqragError, RuntimeError):
    """The index directory cannot be used as asked; the message says why and what to do."""


class IndexMismatchError(IndexStoreError):
    """A query embedder whose signature differs from the one the index was built with."""


class IndexPermissionError(IndexStoreError):
    """The index folder is there but this process may not read or write it (its mode, a read-only
    mount): no rebuild helps, so the message names the folder and the permission instead."""
