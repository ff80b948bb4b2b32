"""The embedder: a Hugging Face transformer, a pooling and a tokenisation policy."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from embedder.batching import length_sorted_order, run_batches
from embedder.pooling import pool
from embedder.prompts import document_wrapper, query_wrapper
from embedder.spec import EmbedderSpec


@runtime_checkable
class Embedder(Protocol):
    """What indexing, training and evaluation rely on."""

    dim: int
    signature: str
    max_length: int

    def encode_queries(self, texts: Sequence[str], instruction: str | None = None) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class LoadedFrom:
    """Provenance of the weights, for the signature."""

    model_ref: str
    revision: str | None = None
    adapter_ref: str | None = None
    quantization: str | None = None
    adapter_path: str | None = None  # where the adapter was read from, so an index can reload it


class TransformerEmbedder:
    """Encodes text with a transformer: length-sorted batches, pooling, L2 norm.

    Decoders (``spec.pooling == "last"``) get position ids counted from each row's first real
    token (RoPE is shift-invariant, absolute-position decoders are not) and, where the spec says
    so, EOS appended to every input as E5-mistral was trained.
    """

    #: how the forward pass runs (:mod:`embedder.onnx` has the others)
    backend = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        spec: EmbedderSpec,
        loaded_from: LoadedFrom,
        batch_size: int = 32,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self.loaded_from = loaded_from
        self.batch_size = batch_size
        self.max_length = min(spec.max_length, _model_max_positions(model) or spec.max_length)
        self.pad_id = _pad_token_id(tokenizer)
        self.eos_id = tokenizer.eos_token_id if spec.append_eos else None
        if spec.append_eos and self.eos_id is None:
            raise ValueError(f"{spec.name}: the spec appends EOS but the tokenizer has no eos_token_id")
        self.dim = int(model.config.hidden_size)

    # ---- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype_name(self) -> str:
        if self.loaded_from.quantization:
            return self.loaded_from.quantization
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    @property
    def signature(self) -> str:
        """Tells embedders apart: vectors from different signatures must not be mixed."""
        return embedder_signature(self.loaded_from, self.spec, self.dtype_name)

    @property
    def format_digest(self) -> str:
        return format_digest(self.spec)

    def __repr__(self) -> str:
        return f"TransformerEmbedder({self.signature}, dim={self.dim}, device={self.device})"

    # ---- text -> ids ----------------------------------------------------------------------
    def format_queries(self, texts: Sequence[str], instruction: str | None = None) -> list[str]:
        """Queries as the model saw them in training (``Instruct: ...\\nQuery: ...`` for decoders)."""
        wrap = self._query_wrapper(instruction)
        return [wrap(t) for t in texts] if wrap else list(texts)

    def format_documents(self, texts: Sequence[str]) -> list[str]:
        wrap = self._document_wrapper()
        return [wrap(t) for t in texts] if wrap else list(texts)

    def _query_wrapper(self, instruction: str | None) -> Callable[[str], str] | None:
        return query_wrapper(self.spec, instruction)

    def _document_wrapper(self) -> Callable[[str], str] | None:
        return document_wrapper(self.spec)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, truncated to the window, EOS appended where the spec wants it."""
        encoded = self.tokenizer(
            list(texts), add_special_tokens=True, truncation=True, max_length=self._budget, padding=False
        )["input_ids"]
        return [self._with_eos(ids) for ids in encoded]

    def query_ids(self, texts: Sequence[str], instruction: str | None = None) -> list[list[int]]:
        """Token ids of formatted queries; an over-long query is cut inside the template."""
        return self.tokenize_wrapped(texts, self._query_wrapper(instruction))

    def document_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of formatted documents; an over-long document is cut inside the template."""
        return self.tokenize_wrapped(texts, self._document_wrapper())

    def tokenize_wrapped(self, texts: Sequence[str], wrap: Callable[[str], str] | None) -> list[list[int]]:
        """Like :meth:`tokenize` on ``wrap(text)``, but over-long texts lose their own tail, not the template's.

        Plain truncation would cut a suffix such as PromptEOL's ``means in one word: "``, and the
        last token (the one that is pooled) would then be a word from the middle of the passage.
        """
        if wrap is None:
            return self.tokenize(texts)
        encoded = self.tokenizer([wrap(t) for t in texts], add_special_tokens=True, padding=False)["input_ids"]
        out = []
        for text, ids in zip(texts, encoded, strict=False):
            if len(ids) > self._budget:
                ids = self._fit_inside(text, wrap, len(ids) - self._budget)
            out.append(self._with_eos(list(ids)))
        return out

    def _fit_inside(self, text: str, wrap: Callable[[str], str], overflow: int) -> list[int]:
        """Shorten ``text`` token by token from its end until ``wrap(text)`` fits the window."""
        ends = self._token_ends(text)
        keep = len(ends)
        while True:
            keep = max(keep - overflow, 0)
            cut = text[: ends[keep - 1]] if keep else ""
            ids = self.tokenizer(wrap(cut), add_special_tokens=True, padding=False)["input_ids"]
            overflow = len(ids) - self._budget
            if overflow <= 0:
                return list(ids)
            if keep == 0:  # the template alone is longer than the window: plain truncation is all that is left
                return list(ids[: self._budget])

    def _token_ends(self, text: str) -> list[int]:
        """Character offset where each token of ``text`` ends (fast tokenizers; else a decode per prefix)."""
        if getattr(self.tokenizer, "is_fast", False):
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return [end for _, end in enc["offset_mapping"] if end > 0] or [len(text)]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [len(self.tokenizer.decode(ids[: i + 1], skip_special_tokens=True)) for i in range(len(ids))]

    @property
    def _budget(self) -> int:
        return self.max_length - (1 if self.eos_id is not None else 0)

    def _with_eos(self, ids: Sequence[int]) -> list[int]:
        if self.eos_id is None or (ids and ids[-1] == self.eos_id):
            return list(ids)
        return [*ids, self.eos_id]

    def pad(self, batch: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Pad a batch on the spec's side; decoders also get positions that ignore padding."""
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            span = slice(width - len(ids), width) if self.spec.padding_side == "left" else slice(0, len(ids))
            input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
            mask[row, span] = 1
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if self.spec.is_decoder:
            inputs["position_ids"] = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return inputs

    # ---- ids -> vectors -------------------------------------------------------------------
    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled, L2-normalised float32 embeddings ``(batch, dim)``; keeps the autograd graph."""
        device = self.device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        hidden = self.model(**inputs).last_hidden_state
        pooled = pool(self.spec.pooling, hidden, inputs["attention_mask"])
        return F.normalize(pooled.float(), p=2, dim=-1)

    def encode_ids(
        self, ids: Sequence[Sequence[int]], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = length_sorted_order([len(x) for x in ids])
        ordered = [ids[i] for i in order]

        @torch.inference_mode()
        def run(batch: Sequence[Sequence[int]]) -> np.ndarray:
            return self.forward(self.pad(batch)).cpu().numpy()

        with tqdm(total=len(ids), desc=f"embed[{self.name}]", disable=not show_progress, unit="text") as bar:
            vectors = run_batches(ordered, batch_size or self.batch_size, run, progress=bar.update)
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

    def encode(self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        """Encode texts exactly as given (no instruction is added)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_ids(self.tokenize(texts), batch_size=batch_size, show_progress=show_progress)

    def encode_queries(
        self,
        texts: Sequence[str],
        instruction: str | None = None,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Queries with the task instruction (decoders), as float32 unit vectors ``(n, dim)``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_ids(self.query_ids(texts, instruction), batch_size=batch_size, show_progress=show_progress)

    def encode_documents(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Documents (bare unless the spec has a document template), as float32 unit vectors ``(n, dim)``."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_ids(self.document_ids(texts), batch_size=batch_size, show_progress=show_progress)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenize(texts)]


def embedder_signature(loaded_from: LoadedFrom, spec: EmbedderSpec, dtype_name: str) -> str:
    """The signature from what decides the vectors: weights, adapter, pooling, dtype, EOS, templates.

    A pure function, so a signature can be known before any weights are loaded
    (:func:`embedder.loading.predict_signature`)."""
    parts = [
        loaded_from.model_ref + (f"@{loaded_from.revision}" if loaded_from.revision else ""),
        f"adapter={loaded_from.adapter_ref or 'none'}",
        f"pool={spec.pooling}",
        f"dtype={dtype_name}",
        f"eos={int(spec.append_eos)}",
        f"fmt={format_digest(spec)}",
    ]
    return "|".join(parts)


def format_digest(spec: EmbedderSpec) -> str:
    """Short digest of the input templates: re-templated inputs give different vectors."""
    text = f"{spec.query_template}\x00{spec.document_template}"
    if any(_has_suffix(t) for t in (spec.query_template, spec.document_template)):
        text += "\x00cut-inside"  # long texts are now cut inside the template: older vectors differ
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _has_suffix(template: str | None) -> bool:
    """Whether a template puts text after its placeholder (which plain truncation would cut)."""
    return template is not None and not template.endswith(("{text}", "{query}"))


def _pad_token_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _model_max_positions(model: torch.nn.Module) -> int | None:
    value = getattr(model.config, "max_position_embeddings", None)
    return int(value) if value else None
