"""The generator as the stages use it: batched, and cached on disk so a resumed run never pays twice.

Each answer is appended to a JSON-lines cache as soon as its batch returns, keyed by the
generator's name, the messages and the decoding settings. A killed run loses at most the batch
in flight; a second run (or another run sharing ``--generation-cache``) reuses every answer.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from finetune.rundir import append_jsonl, iter_jsonl
from linqrag.generation import GenerationConfig, Generator


def cache_key(generator_name: str, messages: Sequence[dict], config: GenerationConfig) -> str:
    payload = json.dumps([generator_name, list(messages), config.to_json()], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class CachedGenerator:
    """A :class:`~linqrag.generation.Generator` behind a persistent answer cache.

    The generator itself is created only when an answer is missing from the cache (``factory``),
    so a fully cached stage does not even load the model.
    """

    def __init__(self, factory, name: str, cache_path: Path, batch_size: int = 8) -> None:
        self._factory = factory
        self._generator: Generator | None = None
        self.name = name
        self.cache_path = Path(cache_path)
        self.batch_size = batch_size
        self.cache: dict[str, str] = {row["key"]: row["text"] for row in iter_jsonl(self.cache_path)}
        self.generated = 0  # answers paid for in this process
        self.seconds = 0.0  # time spent generating them

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = self._factory()
        return self._generator

    def complete(self, prompts: Sequence[Sequence[dict]], config: GenerationConfig, desc: str = "generate",
                 show_progress: bool = True) -> list[str]:
        """Answers in prompt order; cached ones free, the rest in batches, each batch saved at once."""
        keys = [cache_key(self.name, p, config) for p in prompts]
        missing = list(dict.fromkeys(k for k in keys if k not in self.cache))
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        with tqdm(total=len(missing), desc=desc, unit="prompt", disable=not show_progress or not missing) as bar:
            step = self.batch_size * 2
            for start in range(0, len(missing), step):
                part = missing[start:start + step]
                t0 = time.perf_counter()
                answers = self.generator.generate_batch([prompts[first[k]] for k in part], config)
                self.seconds += time.perf_counter() - t0
                self.generated += len(part)
                append_jsonl(self.cache_path, ({"key": k, "text": a} for k, a in zip(part, answers, strict=True)))
                self.cache.update(zip(part, answers, strict=True))
                bar.update(len(part))
        return [self.cache[k] for k in keys]

    @property
    def per_minute(self) -> float | None:
        return 60 * self.generated / self.seconds if self.seconds > 0 else None


def open_generator(config, cache_path: Path) -> CachedGenerator:
    """The configured backend (local SmolLM2 by default) behind the cache.

    The local kind runs on llama.cpp where ``choose_local_backend`` picks it (llama-cpp-python
    installed, a GGUF model, the CPU): its sampling differs from transformers', so its answers are
    cached under ``local:MODEL:llama.cpp``; the transformers path keeps the plain ``local:MODEL``
    name, so caches written before llama.cpp existed still hit.
    """
    from linqrag.generation import choose_local_backend, load_generator

    kind = config.generator
    model = config.generator_model or ("smollm2" if kind == "local" else None)
    name = f"{kind}:{model}" + (f"@{config.base_url}" if kind == "openai" else "")
    backend, why = choose_local_backend(model) if kind == "local" else (None, None)
    if backend == "llama.cpp":
        name += ":llama.cpp"

    def factory() -> Generator:
        if kind == "openai":
            return load_generator("openai", model=model, base_url=config.base_url,
                                  api_key_env=config.api_key_env or None, deadline=config.generator_deadline)
        return load_generator("local", model=model, batch_size=config.generator_batch_size, backend=backend,
                              why=why)

    return CachedGenerator(factory, name, cache_path, batch_size=config.generator_batch_size)
