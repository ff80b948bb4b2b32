"""Corpora into a persistent, incremental index (Chroma + BM25) and dense / BM25 / hybrid retrieval
(the kinds are a registry: :mod:`indexing.retrievers`)."""

from indexing.build import build_index
from indexing.chunking import ChunkConfig, chunk_documents, default_chunk_config
from indexing.filters import FilterError, SearchFilter
from indexing.records import BuildReport, Chunk, Hit, SearchResult
from indexing.retrieval import Index, list_indexes, open_index, published_state
from indexing.retrievers import (
    DEFAULT_RETRIEVER,
    RETRIEVERS,
    Retriever,
    RetrieverKind,
    RetrieverOptions,
    register_retriever,
    rrf_fuse,
)
from indexing.selection import SearchError
from indexing.store import IndexMismatchError, IndexPermissionError, IndexStoreError

__all__ = [
    "DEFAULT_RETRIEVER",
    "RETRIEVERS",
    "BuildReport",
    "Chunk",
    "ChunkConfig",
    "FilterError",
    "Hit",
    "Index",
    "IndexMismatchError",
    "IndexPermissionError",
    "IndexStoreError",
    "Retriever",
    "RetrieverKind",
    "RetrieverOptions",
    "SearchError",
    "SearchFilter",
    "SearchResult",
    "build_index",
    "chunk_documents",
    "default_chunk_config",
    "list_indexes",
    "open_index",
    "published_state",
    "register_retriever",
    "rrf_fuse",
]
