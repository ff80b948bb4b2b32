"""llama-index integrations: our retrievers as a ``BaseRetriever``, our Chroma collection as a
``ChromaVectorStore`` (queried with our embedder through ``embedder.LinqragEmbedding``)."""

from __future__ import annotations

from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from indexing.filters import SearchFilter
from indexing.retrieval import Index
from indexing.retrievers import Retriever


class LinqragRetriever(BaseRetriever):
    """Any linqrag retriever (dense, bm25, hybrid) as a llama-index retriever, optionally filtered."""

    def __init__(self, retriever: Retriever, k: int = 10, filter: SearchFilter | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._linqrag = retriever
        self._k = k
        self._filter = filter

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self._linqrag.search(query_bundle.query_str, self._k, filter=self._filter)
        return [
            NodeWithScore(node=TextNode(id_=hit.chunk_id, text=hit.text, metadata=dict(hit.metadata)), score=hit.score)
            for hit in result.hits
        ]


def chroma_vector_store(index: Index):
    """The index's Chroma collection as a llama-index ``ChromaVectorStore``.

    Query it with ``embedder.LinqragEmbedding`` over the embedder the index was built with.
    """
    from llama_index.vector_stores.chroma import ChromaVectorStore

    return ChromaVectorStore(chroma_collection=index.store.collection)
