"""The OpenAI-compatible backend: chat completions over plain HTTP, streamed via server-sent events."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from linqrag.generation.config import DEFAULT_CONFIG, GenerationConfig, GenerationError, GeneratorUnavailable, Message
from linqrag.generation.text import check_messages, cut_at_stop, cut_stream_at_stop
from linqrag.http import CallLimits, HTTPCallError, post_json, redact


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
            raise GeneratorUnavailable(
                f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}")
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
