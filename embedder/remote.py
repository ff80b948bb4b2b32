"""An embedder behind an embedding server: OpenAI-compatible ``/v1/embeddings`` (vLLM with
``--runner pooling``, Infinity, OpenAI, ``python -m app api``) or TEI's ``/embed``.

    load_embedder("openai:minilm", base_url="http://127.0.0.1:8000/v1")
    load_embedder("openai:minilm@http://127.0.0.1:8000/v1")     # the same, one string
    load_embedder("tei:linq@http://gpu-box:8080")                # TEI serving Linq-Embed-Mistral

The part after ``openai:``/``tei:`` names the served model; when it is (or ``template=`` names) a
preset, that preset's query instruction and document template are applied here, on the client,
so the server embeds exactly the text a local model would. The endpoint and model are part of the
signature: an index built through one endpoint refuses queries embedded by another, or locally.

The EOS caveat: Linq-Embed-Mistral and E5-mistral pool the state of an EOS token appended to the
input, and a text API cannot send a token id. Servers that tokenise for a pooling model (vLLM,
TEI, ``python -m app api``) append it themselves; one that does not returns vectors pooled on the
last word. Check a server once: embed a few texts remotely and locally and compare
(``tests/test_remote_embedder.py`` does this against ``python -m app api``; max difference 1e-5).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import numpy as np
from tqdm.auto import tqdm

from embedder.model import LoadedFrom
from embedder.prompts import document_wrapper, query_wrapper
from embedder.sources import ModelNotFoundError
from embedder.spec import EmbedderSpec
from linqrag.http import CallLimits, HTTPCallError, post_json, redact  # noqa: F401  (redact: public here too)

KINDS = ("openai", "tei")
#: Environment variables read for the endpoint's key, first set wins (never logged or stored).
KEY_ENV = ("LINQRAG_EMBEDDINGS_KEY", "OPENAI_API_KEY")
#: Default base URL of ``openai:`` without one (``LINQRAG_EMBEDDINGS_URL`` overrides).
OPENAI_URL = "https://api.openai.com/v1"


class RemoteEmbedderError(ModelNotFoundError):
    """The endpoint standing in for the model cannot serve it; the message says what it answered."""


def is_remote_name(name: str | None) -> bool:
    return bool(name) and name.split(":", 1)[0] in KINDS and ":" in name


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: kind, base URL, served model; limits for every call."""

    kind: str
    base_url: str
    model: str
    #: Seconds for one HTTP attempt (connect + read), and for the whole call with its retries.
    timeout: float = 60.0
    deadline: float = 300.0
    retries: int = 5
    batch_size: int = 64

    @property
    def url(self) -> str:
        return f"{self.base_url}/embeddings" if self.kind == "openai" else f"{self.base_url}/embed"


def parse_remote_name(name: str, base_url: str | None = None) -> tuple[str, str, str]:
    """``(kind, model, base_url)`` from ``openai:MODEL[@URL]`` / ``tei:MODEL@URL``."""
    kind, _, rest = name.partition(":")
    model, _, url = rest.partition("@")
    default_url = os.environ.get("LINQRAG_EMBEDDINGS_URL") or (OPENAI_URL if kind == "openai" else "")
    url = (base_url or url or default_url).rstrip("/")
    if kind not in KINDS or not model:
        raise RemoteEmbedderError(f"{name!r}: write a remote embedder as openai:MODEL[@URL] or tei:MODEL@URL")
    if urlparse(url).scheme not in ("http", "https"):
        raise RemoteEmbedderError(f"{name!r}: the endpoint needs an http(s) base URL (base_url= or MODEL@URL), got "
                                  f"{url!r}")
    if kind == "openai" and url.endswith("/embeddings"):
        url = url.removesuffix("/embeddings")
    if kind == "tei" and url.endswith("/embed"):
        url = url.removesuffix("/embed")
    return kind, model, url


def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text)


class ApproxTokenizer:
    """Word pieces for chunking when the served model's tokenizer is not on this machine."""

    is_fast = False
    eos_token_id = None

    def __call__(self, text, add_special_tokens: bool = True, verbose: bool = False, **_):
        if isinstance(text, str):
            return {"input_ids": list(range(len(_words(text))))}
        return {"input_ids": [list(range(len(_words(t)))) for t in text]}


class RemoteEmbedder:
    """The :class:`~embedder.model.TransformerEmbedder` interface over HTTP; vectors L2-normalised here."""

    def __init__(self, endpoint: Endpoint, spec: EmbedderSpec | None, tokenizer=None,
                 max_length: int | None = None) -> None:
        self.endpoint = endpoint
        self.spec = spec
        self.tokenizer = tokenizer or ApproxTokenizer()
        self.max_length = max_length or (spec.max_length if spec else 512)
        self.batch_size = endpoint.batch_size
        self.loaded_from = LoadedFrom(model_ref=f"{endpoint.kind}:{endpoint.model}@{endpoint.base_url}")
        self.dim: int | None = None
        self.calls = 0
        self._client = None

    # ---- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Reloads this embedder: ``load_embedder(embedder.name)`` (what an index's manifest keeps)."""
        return f"{self.endpoint.kind}:{self.endpoint.model}@{self.endpoint.base_url}"

    @property
    def device(self) -> str:
        return "remote"

    @property
    def signature(self) -> str:
        templates = f"{self.spec.query_template}\x00{self.spec.document_template}" if self.spec else "bare"
        fmt = hashlib.sha256(templates.encode()).hexdigest()[:8]
        return f"remote:{self.endpoint.kind}:{self.endpoint.base_url}|model={self.endpoint.model}|fmt={fmt}"

    def __repr__(self) -> str:
        return f"RemoteEmbedder({self.signature})"

    # ---- text -----------------------------------------------------------------------------
    def format_queries(self, texts: Sequence[str], instruction: str | None = None) -> list[str]:
        wrap = query_wrapper(self.spec, instruction)
        return [wrap(t) for t in texts] if wrap else list(texts)

    def format_documents(self, texts: Sequence[str]) -> list[str]:
        wrap = document_wrapper(self.spec)
        return [wrap(t) for t in texts] if wrap else list(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.tokenizer(t)["input_ids"]) for t in texts]

    # ---- vectors --------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        """Texts exactly as given, a batch per request."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        size = batch_size or self.batch_size
        parts = []
        with tqdm(total=len(texts), desc=f"embed[{self.endpoint.model} remote]", unit="text",
                  disable=not show_progress) as bar:
            for i in range(0, len(texts), size):
                parts.append(self._request(texts[i : i + size]))
                bar.update(len(texts[i : i + size]))
        vectors = np.concatenate(parts).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def encode_queries(self, texts: Sequence[str], instruction: str | None = None, batch_size: int | None = None,
                       show_progress: bool = False) -> np.ndarray:
        return self.encode(self.format_queries(texts, instruction), batch_size, show_progress)

    def encode_documents(self, texts: Sequence[str], batch_size: int | None = None,
                         show_progress: bool = False) -> np.ndarray:
        return self.encode(self.format_documents(texts), batch_size, show_progress)

    # ---- HTTP -----------------------------------------------------------------------------
    def _http(self):
        import httpx

        if self._client is None:
            headers = {"Content-Type": "application/json"}
            key = next((os.environ[k] for k in KEY_ENV if os.environ.get(k)), None)
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._client = httpx.Client(headers=headers, timeout=self.endpoint.timeout)
        return self._client

    def _payload(self, texts: list[str]) -> dict:
        if self.endpoint.kind == "openai":
            return {"model": self.endpoint.model, "input": texts, "encoding_format": "float"}
        return {"inputs": texts, "truncate": True, "normalize": True}

    def _parse(self, body, n: int) -> np.ndarray:
        try:
            if self.endpoint.kind == "openai":
                rows = sorted(body["data"], key=lambda r: r.get("index", 0))
                vectors = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
            else:
                vectors = np.asarray(body, dtype=np.float32)
        except (KeyError, TypeError, ValueError) as error:
            raise RemoteEmbedderError(
                f"{self.endpoint.url} answered something that is not an embedding list ({error})") from error
        if vectors.ndim != 2 or len(vectors) != n:
            raise RemoteEmbedderError(f"{self.endpoint.url} returned {len(vectors)} vectors for {n} texts")
        if self.dim is None:
            self.dim = int(vectors.shape[1])
        elif vectors.shape[1] != self.dim:
            raise RemoteEmbedderError(f"{self.endpoint.url} changed dimension from {self.dim} to {vectors.shape[1]}")
        return vectors

    def _request(self, texts: list[str]) -> np.ndarray:
        """One batch, retried on 429/5xx and lost connections with jittered backoff, within the deadline."""
        endpoint = self.endpoint
        limits = CallLimits(endpoint.timeout, endpoint.deadline, endpoint.retries)
        try:
            content = post_json(self._http(), endpoint.url, self._payload(texts), limits,
                                on_attempt=self._count_call)
        except HTTPCallError as error:
            raise RemoteEmbedderError(f"{error} (no embeddings)" if error.gave_up else str(error)) from None
        try:
            return self._parse(json.loads(content), len(texts))
        except ValueError as error:
            raise RemoteEmbedderError(f"{endpoint.url} answered with something that is not JSON ({error})") from error

    def _count_call(self) -> None:
        self.calls += 1


def load_remote_embedder(name: str, base_url: str | None = None, template: str | None = None,
                         max_length: int | None = None, batch_size: int | None = None,
                         timeout: float = 60.0, deadline: float = 300.0) -> RemoteEmbedder:
    """``openai:MODEL[@URL]`` / ``tei:MODEL@URL``; the preset ``template`` (default: MODEL when it
    names one) decides the client-side formatting and, where its files are here, the tokenizer
    used for chunking."""
    from embedder.presets import PRESETS

    kind, model, url = parse_remote_name(name, base_url)
    spec = PRESETS.get(template or model)
    if template and spec is None:
        raise RemoteEmbedderError(f"template {template!r} is not a preset ({', '.join(PRESETS)})")
    tokenizer = None
    if spec is not None:
        try:
            from embedder.tokenizers import tokenizer_for

            tokenizer = tokenizer_for(spec)
        except (ModelNotFoundError, OSError, ValueError):
            tokenizer = None  # chunk by approximate word pieces instead
    endpoint = Endpoint(kind, url, model, timeout=timeout, deadline=deadline, batch_size=batch_size or 64)
    return RemoteEmbedder(endpoint, spec, tokenizer, max_length)
