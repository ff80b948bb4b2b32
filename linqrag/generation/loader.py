"""Which backend runs a local generator (:func:`choose_local_backend`), and :func:`load_generator`, the one
way the app, the benches and ``finetune/`` get a generator."""

from __future__ import annotations

import logging
import os

from linqrag.generation import llamacpp
from linqrag.generation.config import (
    BACKEND_ENV,
    GENERATOR_KINDS,
    LOCAL_BACKENDS,
    SMOLLM2_ALIASES,
    Generator,
    GeneratorUnavailable,
)
from linqrag.generation.local import LocalHFGenerator, default_dtype
from linqrag.generation.models import resolve_gguf
from linqrag.generation.openai import OpenAICompatibleGenerator

log = logging.getLogger(__name__)


def choose_local_backend(model: str = "smollm2", backend: str | None = "auto", device: str | None = None
                         ) -> tuple[str, str]:
    """``(backend, why)`` for a local generator, without loading anything.

    ``auto`` (or ``$LINQRAG_GENERATOR_BACKEND`` when ``backend`` is None or ``auto`` and the variable
    is set) gives ``llama.cpp`` when ``llama_cpp`` imports, the model is a GGUF file (the default
    SmolLM2), the run is on the CPU and that CPU lacks native bf16; ``transformers`` otherwise, with
    the reason. With native bf16 (AMX, AVX-512 BF16) our bf16 decode loop wrote 43.9-48.9 queries a
    minute on one core against llama.cpp's 20.6 (bench/RESULTS.md), so asking for llama.cpp by name
    is the only way to get it there.
    """
    if backend in (None, "auto"):
        backend = os.environ.get(BACKEND_ENV, "").strip() or "auto"
    if backend not in LOCAL_BACKENDS:
        raise ValueError(f"local generator backend must be one of {LOCAL_BACKENDS}, got {backend!r}")
    gguf = resolve_gguf(model)
    what = "SmolLM2 GGUF" if model in SMOLLM2_ALIASES else (f"{gguf[0].name}" if gguf else model)
    if backend == "transformers":
        return "transformers", "asked for"
    if backend == "llama.cpp":
        _check_llama_cpp_asked_for(model, gguf)
        return "llama.cpp", what
    if not llamacpp.llama_cpp_available():
        return "transformers", "llama-cpp-python not installed"
    if gguf is None:
        return "transformers", f"{model} is not a GGUF file"
    if device not in (None, "cpu") or (device is None and _cuda_available()):
        return "transformers", "a GPU is used"
    if default_dtype("cpu") == "bf16":
        return "transformers", "native bf16 on this CPU: the bf16 transformers path is the faster one"
    ok, why = llamacpp.llama_cpp_runs(str(gguf[0]))
    if not ok:
        return "transformers", f"llama.cpp failed a probe on this CPU ({why}; `FORCE=1 make llama-cpp` rebuilds it)"
    return "llama.cpp", what


def _check_llama_cpp_asked_for(model: str, gguf) -> None:
    """Raise why llama.cpp, asked for by name, cannot run ``model`` here."""
    if not llamacpp.llama_cpp_available():
        raise GeneratorUnavailable("backend llama.cpp asked for, but llama-cpp-python is not installed: "
                                   "`make llama-cpp` (or `pip install llama-cpp-python`)")
    if gguf is None:
        raise GeneratorUnavailable(f"backend llama.cpp needs a GGUF file, and {model!r} is not one")
    ok, why = llamacpp.llama_cpp_runs(str(gguf[0]))
    if not ok:
        raise GeneratorUnavailable(f"llama.cpp failed a probe on this CPU ({why}): rebuild it with "
                                   "`FORCE=1 make llama-cpp`, or use backend transformers")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def load_generator(
    kind: str = "local",
    model: str | None = None,
    base_url: str | None = None,
    *,
    api_key_env: str | None = "OPENAI_API_KEY",
    device: str | None = None,
    batch_size: int = 32,
    backend: str | None = "auto",
    threads: int | None = None,
    instances: int | None = None,
    deadline: float = 300.0,
    why: str | None = None,
) -> Generator:
    """A generator by kind: ``local`` (``model`` defaults to the packaged ``smollm2``) or ``openai``
    (``base_url`` and ``model`` default to ``$OPENAI_BASE_URL`` and ``$OPENAI_MODEL``).

    ``backend`` (local only): ``auto`` picks llama.cpp for a GGUF model when ``llama_cpp`` imports
    and the run is on the CPU, transformers otherwise (:func:`choose_local_backend`); ``llama.cpp``
    or ``transformers`` force one. ``threads``: llama.cpp threads (default ``torch.get_num_threads()``),
    spread over ``instances`` contexts (default one single-thread context per thread).
    The choice is logged and readable as ``generator.backend``. ``why``: the reason to log for a
    ``backend`` the caller already chose with :func:`choose_local_backend` (its ``auto`` reason,
    not "asked for")."""
    if kind == "local":
        model = model or "smollm2"
        if why is None or backend in (None, "auto"):
            chosen, why = choose_local_backend(model, backend, device)
        else:
            chosen = backend
        log.warning("generator: %s (%s)", chosen, why)
        if chosen == "llama.cpp":
            return llamacpp.LlamaCppGenerator(model, n_threads=threads, instances=instances)
        return LocalHFGenerator(model, device=device, batch_size=batch_size)
    if kind == "openai":
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        model = model or os.environ.get("OPENAI_MODEL")
        if not base_url:
            raise GeneratorUnavailable("the openai generator needs a base URL (--base-url or $OPENAI_BASE_URL)")
        if not model:
            raise GeneratorUnavailable("the openai generator needs a model name (--generator-model or $OPENAI_MODEL)")
        return OpenAICompatibleGenerator(base_url, model, api_key_env=api_key_env, deadline=deadline)
    raise ValueError(f"generator kind must be one of {GENERATOR_KINDS}, got {kind!r}")
