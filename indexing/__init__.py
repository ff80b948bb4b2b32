"""Corpora into a persistent, incremental index (Chroma + BM25) and dense / BM25 / hybrid retrieval."""

from indexing.build import build_index
from indexing.chunking import ChunkConfig, chunk_documents, default_chunk_config
from indexing.filters import FilterError, SearchFilter
from indexing.records import BuildReport, Chunk, Hit, SearchResult
from indexing.retrieval import (
    RETRIEVERS,
    Index,
    Retriever,
    SearchError,
    list_indexes,
    open_index,
    published_state,
    rrf_fuse,
)
from indexing.store import IndexMismatchError, IndexPermissionError, IndexStoreError

__all__ = [
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
    "SearchError",
    "SearchFilter",
    "SearchResult",
    "build_index",
    "chunk_documents",
    "default_chunk_config",
    "list_indexes",
    "open_index",
    "published_state",
    "rrf_fuse",
]
