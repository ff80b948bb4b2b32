"""LLM and encoder embedders: instruction-formatted queries, last-token or mean pooling, unit vectors.

    from embedder import load_embedder
    emb = load_embedder("minilm")          # or "smollm2", "linq", "auto", a hub id, a path
    q = emb.encode_queries(["what is BM25?"])
    d = emb.encode_documents(["BM25 is a bag-of-words ranking function."])
    scores = q @ d.T                       # cosine: vectors are L2-normalised
"""

from embedder.loading import adapter_base, load_embedder, nf4_config
from embedder.model import Embedder, LoadedFrom, TransformerEmbedder
from embedder.pooling import last_token_pool, mean_pool, pool
from embedder.presets import PRESETS, pick_auto, unavailable_reason
from embedder.prompts import DEFAULT_INSTRUCTION, format_query
from embedder.sources import ModelNotFoundError
from embedder.spec import EmbedderSpec, decoder_spec

__all__ = [
    "DEFAULT_INSTRUCTION",
    "PRESETS",
    "Embedder",
    "EmbedderSpec",
    "LinqragEmbedding",
    "LoadedFrom",
    "ModelNotFoundError",
    "TransformerEmbedder",
    "adapter_base",
    "decoder_spec",
    "format_query",
    "last_token_pool",
    "load_embedder",
    "mean_pool",
    "nf4_config",
    "pick_auto",
    "pool",
    "unavailable_reason",
]


def __getattr__(name: str):
    # llama-index is heavy to import; load its adapter only when asked for.
    if name == "LinqragEmbedding":
        from embedder.llamaindex import LinqragEmbedding

        return LinqragEmbedding
    raise AttributeError(name)
