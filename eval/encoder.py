"""linqrag embedders as MTEB encoders: the mteb 2.x ``encode`` protocol and the model's metadata.

Queries get the task's instruction (the embedder formats it: ``Instruct: ...\\nQuery: ...`` for
E5/Linq decoders, nothing for MiniLM); documents never do. STS has no documents: both sentences
are encoded as instructed queries, as E5-mistral and Linq evaluate symmetric tasks.

The metadata's revision is a digest of the embedder's signature (weights, adapter digest, dtype,
pooling, templates) and max length, so mteb's result cache can never serve the scores of one
checkpoint for another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from embedder import TransformerEmbedder

#: SPDX-style licence names of the presets, as mteb spells them.
_LICENCES = {"apache-2.0": "apache-2.0", "mit": "mit", "cc-by-nc-4.0": "cc-by-nc-4.0"}


def model_revision(embedder: TransformerEmbedder) -> str:
    """A short, filesystem-safe digest of everything that changes the vectors."""
    key = f"{embedder.signature}|max_length={embedder.max_length}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def model_name(embedder: TransformerEmbedder) -> str:
    """``linqrag/<preset>`` (+ the adapter's directory name), as mteb wants ``org/name``."""
    name = embedder.name.replace("/", "__")
    adapter = embedder.loaded_from.adapter_ref
    if adapter:
        name += "+" + adapter.split("#")[0].replace("/", "_")
    return f"linqrag/{name}"


def _licence(spec_licence: str) -> str | None:
    head = spec_licence.split(" ")[0].lower()
    return _LICENCES.get(head)


def model_meta(embedder: TransformerEmbedder) -> ModelMeta:
    """The :class:`mteb.ModelMeta` of a loaded embedder."""
    spec = embedder.spec
    n_parameters = sum(p.numel() for p in embedder.model.parameters())
    uses_instructions = bool(spec.query_template and "{instruction}" in spec.query_template)
    return ModelMeta(
        loader=None,
        name=model_name(embedder),
        revision=model_revision(embedder),
        release_date=None,
        languages=["eng-Latn"],
        n_parameters=int(n_parameters),
        memory_usage_mb=None,
        max_tokens=embedder.max_length,
        embed_dim=embedder.dim,
        license=_licence(spec.licence),
        open_weights=True,
        public_training_code=None,
        public_training_data=None,
        framework=["PyTorch"],
        reference=None,
        similarity_fn_name="cosine",
        use_instructions=uses_instructions,
        training_datasets=None,
        adapted_from=embedder.loaded_from.model_ref if embedder.loaded_from.adapter_ref else None,
    )


def batch_texts(inputs: Iterable[dict]) -> list[str]:
    """The texts of an mteb dataloader (batches of ``{"text": [...]}``), in order."""
    return [text for batch in inputs for text in batch["text"]]


class MtebEncoder(AbsEncoder):
    """Wraps a :class:`TransformerEmbedder` for ``mteb.evaluate``.

    Texts repeated within a task (SICK reuses each sentence ~3 times) are encoded once.
    """

    def __init__(self, embedder: TransformerEmbedder, batch_size: int | None = None,
                 show_progress: bool = True) -> None:
        self.model = embedder
        self.mteb_model_meta = model_meta(embedder)
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._memo: dict[tuple[str, str | None, str], np.ndarray] = {}
        self._memo_task: str | None = None

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs) -> np.ndarray:
        texts = batch_texts(inputs)
        if prompt_type == PromptType.document:
            side, instruction = "document", None
        else:
            side, instruction = "query", self.get_instruction(task_metadata, prompt_type) or None
        return self.encode_texts(texts, side, instruction, task_metadata.name,
                                 show_progress=kwargs.get("show_progress_bar", self.show_progress))

    def encode_texts(self, texts: Sequence[str], side: str, instruction: str | None, task: str,
                     show_progress: bool = False) -> np.ndarray:
        """``(len(texts), dim)`` unit vectors; ``side`` is ``query`` or ``document``."""
        if task != self._memo_task:
            self._memo, self._memo_task = {}, task
        todo = list(dict.fromkeys(t for t in texts if (side, instruction, t) not in self._memo))
        if todo:
            if side == "document":
                vectors = self.model.encode_documents(todo, batch_size=self.batch_size, show_progress=show_progress)
            else:
                vectors = self.model.encode_queries(todo, instruction=instruction, batch_size=self.batch_size,
                                                    show_progress=show_progress)
            self._memo.update({(side, instruction, t): v for t, v in zip(todo, vectors, strict=False)})
        if not texts:
            return np.zeros((0, self.model.dim), dtype=np.float32)
        return np.stack([self._memo[(side, instruction, t)] for t in texts])
