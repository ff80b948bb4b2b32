"""The llama.cpp backend: a GGUF run by ``llama-cpp-python`` (:class:`LlamaCppGenerator`), and the
probe that tells whether the installed build runs on this CPU at all."""

from __future__ import annotations

import codecs
import functools
import json
import threading
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from linqrag.files import write_json_atomic
from linqrag.generation.config import (
    DEFAULT_CONFIG,
    SMOLLM2_HOW_TO_GET,
    GenerationConfig,
    GeneratorUnavailable,
    Message,
)
from linqrag.generation.models import resolve_gguf
from linqrag.generation.text import check_messages, cut_at_stop, cut_stream_at_stop, fit_to_window

#: Prompts one context decodes together in ``generate_batch`` (``linqrag.generation.llamacpp_batch``).
DEFAULT_PARALLEL = 1


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
    write_json_atomic(memo, {"ok": ok, "why": why})
    return ok, why


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
                 n_batch: int = 512, instances: int | None = None, verbose: bool = False,
                 parallel: int | None = None) -> None:
        if not llama_cpp_available():
            raise GeneratorUnavailable("llama-cpp-python is not installed: `make llama-cpp` "
                                       "(or `pip install llama-cpp-python`), or use the transformers backend")
        import llama_cpp

        found = resolve_gguf(model)
        if found is None:
            raise GeneratorUnavailable(
                f"the llama.cpp backend needs a GGUF file: {model!r} is neither one nor 'smollm2'. "
                f"{SMOLLM2_HOW_TO_GET}")
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
        #: prompts decoded together by one context in :meth:`generate_batch` (1: one at a time)
        self.parallel = max(1, int(parallel if parallel is not None else DEFAULT_PARALLEL))
        self._decoders: dict[int, object] = {}
        # batched answers are sampled by our own sampler, not llama.cpp's: cached under their own name
        self.name = f"local:{display}:llama.cpp" + (f"-batched{self.parallel}" if self.parallel > 1 else "")
        self.stats = {"calls": 0, "prompt_tokens": 0, "reused_tokens": 0, "new_tokens": 0}
        self._free = list(range(self.instances))
        self._pool = threading.Condition()

    def __repr__(self) -> str:
        return (f"LlamaCppGenerator({self.name}, {self.instances} x {self.threads_per_instance} threads, "
                f"n_ctx={self.window})")

    def _token_text(self, token: int) -> str:
        return self.llm._model.token_get_text(token) if token >= 0 else ""

    def _decoder(self, index: int):
        """Context ``index``'s batched decoder, made on first use (its KV cache holds a whole group)."""
        from linqrag.generation.llamacpp_batch import BatchDecoder

        if index not in self._decoders:
            decoder = BatchDecoder(self.llms[index], self.parallel, min(self.parallel * self.window, 16384),
                                   self.threads_per_instance)
            weakref.finalize(self, decoder.close)
            self._decoders[index] = decoder
        return self._decoders[index]

    def _answer_group(self, index: int, group: list[list[int]], config: GenerationConfig) -> list[str]:
        """Answers of prompts decoded together in context ``index``'s batched decoder."""
        llm = self.llms[index]

        def finished(tokens: list[int]) -> bool:
            return bool(config.stop) and any(
                s in llm.detokenize(tokens).decode("utf-8", errors="replace") for s in config.stop)

        outs = self._decoder(index).generate(group, config, self._is_eog, finished)
        with self._pool:
            self.stats["calls"] += len(group)
            self.stats["prompt_tokens"] += sum(len(p) for p in group)
            self.stats["new_tokens"] += sum(len(o) for o in outs)
        return [cut_at_stop(llm.detokenize(o).decode("utf-8", errors="replace"), config.stop) for o in outs]

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
        for a, b in zip(cached.tolist() if hasattr(cached, "tolist") else cached, ids, strict=False):
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
            if self.parallel > 1:
                # groups of ``parallel`` consecutive prompts of the token order, each decoded together
                # in its context's batched decoder
                def run(index: int, groups: list[list[int]]) -> None:
                    for group in groups:
                        texts = self._answer_group(index, [prompts[i] for i in group], config)
                        for i, text in zip(group, texts, strict=True):
                            answers[i] = text
                        bar.update(len(group))

                self._share_out([order[k:k + self.parallel] for k in range(0, len(order), self.parallel)], run)
            else:
                def run(_index: int, part: list[int]) -> None:  # a free context is taken per prompt
                    for i in part:
                        answers[i] = self._answer(prompts[i], config)
                        bar.update()

                self._share_out(order, run)
        return answers

    def _share_out(self, items: list, work) -> None:
        """``work(index, run)`` for one contiguous run of ``items`` per context, side by side in threads
        (a run keeps its prompts' shared prefixes together); in this thread when there is one run."""
        size = max(1, -(-len(items) // self.instances))
        runs = [items[k:k + size] for k in range(0, len(items), size)]
        if len(runs) <= 1:
            for run in runs:
                work(0, run)
            return
        with ThreadPoolExecutor(len(runs), thread_name_prefix="linqrag-llama") as pool:
            for future in [pool.submit(work, index, run) for index, run in enumerate(runs)]:
                future.result()

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
