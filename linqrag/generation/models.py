"""Which weights a local generator name means: the packaged SmolLM2, a GGUF file, a directory or a hub id."""

from __future__ import annotations

from pathlib import Path

from linqrag.errors import ModelNotFoundError
from linqrag.generation.config import SMOLLM2_ALIASES, SMOLLM2_HOW_TO_GET, GeneratorUnavailable
from linqrag.weights import convert_gguf, smollm2_gguf


def resolve_local_model(model: str) -> tuple[str, str]:
    """``(path_or_hub_id, display_name)`` for a local generator; raises :class:`GeneratorUnavailable`."""
    if model in SMOLLM2_ALIASES:
        try:
            return str(convert_gguf(smollm2_gguf(SMOLLM2_HOW_TO_GET))), "smollm2"
        except ModelNotFoundError as error:
            raise GeneratorUnavailable(f"generator 'smollm2' is not available: {error}") from error
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        try:
            return str(convert_gguf(path)), path.stem
        except Exception as error:  # any conversion failure means: not usable here
            raise GeneratorUnavailable(f"{path} could not be converted for transformers: {error}") from error
    if path.exists():
        if not (path / "config.json").exists():
            raise GeneratorUnavailable(f"{path} holds no config.json: not a Hugging Face model directory")
        return str(path.resolve()), path.name
    if model.startswith((".", "/", "~")):
        raise GeneratorUnavailable(f"generator model directory {model!r} does not exist")
    return model, model


def resolve_gguf(model: str) -> tuple[Path, str] | None:
    """``(gguf_file, display_name)`` when ``model`` names a GGUF file (the packaged SmolLM2 or a path), else None."""
    if model in SMOLLM2_ALIASES:
        try:
            return smollm2_gguf(SMOLLM2_HOW_TO_GET), "smollm2"
        except ModelNotFoundError:
            return None
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.resolve(), path.stem
    return None
