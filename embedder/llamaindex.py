"""A llama-index ``BaseEmbedding`` over any linqrag embedder, so llama-index pipelines can use it."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from embedder.model import Embedder


class LinqragEmbedding(BaseEmbedding):
    """Queries go through the embedder's instruction; documents are embedded bare."""

    instruction: str | None = None
    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, instruction: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", getattr(embedder, "signature", "linqrag"))
        kwargs.setdefault("embed_batch_size", getattr(embedder, "batch_size", 32))
        super().__init__(instruction=instruction, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "LinqragEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.encode_queries([query], instruction=self.instruction)[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.encode_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.encode_documents(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)
