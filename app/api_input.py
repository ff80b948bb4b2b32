"""What ``python -m app api`` accepts: request bodies read within limits and checked field by field.

Every check runs before any work (no model, no index is touched for a bad request), and every
refusal is a :class:`Refused` that the API answers with its 4xx status and one-line JSON error
``{"error": {"message": ..., "type": ...}}``: a client's mistake is never a 500. Messages never
echo the client's text, which may hold what JSON cannot encode back (a lone surrogate).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import dataclass

from linqrag.errors import ConfigError, LinqragError

#: Characters per query, question or embeddings input (``--max-chars``, ``LINQRAG_API_MAX_CHARS``).
DEFAULT_MAX_CHARS = 20_000
#: Bytes per request body (``--max-body-bytes``, ``LINQRAG_API_MAX_BODY``): 2048 inputs of 4 KiB.
DEFAULT_MAX_BODY = 8 * 2**20
#: Bytes of one incomplete HTTP event (the request line and headers): h11 refuses a longer one
#: with 400 as it arrives, instead of buffering a 100 MB header.
MAX_HEADER_BYTES = 64 * 2**10
#: Levels of JSON nesting a body may have; ours are two deep, the rest is a client's mistake.
MAX_DEPTH = 32
#: Texts per /v1/embeddings request (a bigger request is refused, not queued).
MAX_INPUTS = 2048
ENCODING_FORMATS = ("float", "base64")


class Refused(LinqragError):
    """A request the API will not serve: ``status`` (4xx), the message, and the OpenAI-style error type."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


@dataclass(frozen=True)
class Limits:
    """What one request may hold; beyond either limit the API answers 413 naming it."""

    max_chars: int = DEFAULT_MAX_CHARS
    max_body_bytes: int = DEFAULT_MAX_BODY

    @classmethod
    def from_env(cls) -> Limits:
        return cls(_env_int("LINQRAG_API_MAX_CHARS", DEFAULT_MAX_CHARS),
                   _env_int("LINQRAG_API_MAX_BODY", DEFAULT_MAX_BODY))


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a whole number, 1 or more (got {text!r})")
    return int(text)


# ---- the body ---------------------------------------------------------------------------------
async def read_body(request, limits: Limits) -> bytes:
    """The raw body, refused with 413 past ``limits.max_body_bytes``: by its Content-Length before
    reading, and while reading (a chunked body has none)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "Content-Length must be a whole number of bytes")
        if int(declared) > limits.max_body_bytes:
            raise Refused(413, too_big_body(limits))
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limits.max_body_bytes:
            raise Refused(413, too_big_body(limits))
    return bytes(body)


def too_big_body(limits: Limits) -> str:
    return f"the request body is over the limit of {limits.max_body_bytes} bytes (--max-body-bytes)"


def parse_object(raw: bytes) -> dict:
    """The body as a JSON object of valid Unicode, at most :data:`MAX_DEPTH` levels deep."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8 text") from None
    try:
        body = json.loads(text)
    except RecursionError:  # the C decoder recurses once per level: 100,000 "[" end here
        raise Refused(400, f"the body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as error:
        raise Refused(400, f"the body is not valid JSON ({str(error).split(':')[0]})") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    check_values(body)
    return body


def check_values(body: dict) -> None:
    """Walk the body without recursion: refuse nesting past :data:`MAX_DEPTH` and any string (key
    or value) that is not valid Unicode, such as a lone surrogate ``"\\ud800"``, which no model reads
    and no JSON reply can carry."""
    stack: list[tuple[object, int, str]] = [(body, 1, "body")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise Refused(400, f"the body is nested too deeply (at most {MAX_DEPTH} levels)")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, where)
                stack.append((item, depth + 1, f'"{key}"' if depth == 1 else where))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, where) for item in value)
        elif isinstance(value, str):
            _check_text(value, where)


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        where = where if where.isascii() and where.isprintable() and len(where) <= 40 else "the body"
        raise Refused(400, f"{where} holds invalid Unicode (a lone surrogate such as \\ud800)") from None


# ---- fields -------------------------------------------------------------------------------------
def text_field(body: dict, name: str, limits: Limits) -> str:
    """The non-empty string ``body[name]`` (a query, a question), at most ``limits.max_chars`` long."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, f'give a JSON object with a non-empty string "{name}"')
    if len(value) > limits.max_chars:
        raise Refused(413, f'"{name}" is {len(value)} characters; the limit is {limits.max_chars} (--max-chars)')
    return value


def choice_field(body: dict, name: str, choices: Collection[str], default: str) -> str:
    """``body[name]``, one of ``choices`` (names, or a registry keyed by name)."""
    value = body.get(name, default)
    if not isinstance(value, str) or value not in choices:
        raise Refused(400, f'"{name}" must be one of {", ".join(choices)}')
    return value


def int_field(body: dict, name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(400, f'"{name}" must be an integer from {low} to {high}')
    return value


def optional_string(body: dict, name: str) -> str | None:
    """``body[name]``: a string, or absent / null (a corpus name, a model name)."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise Refused(400, f'"{name}" must be a string or absent')
    return value


def string_list(body: dict, name: str) -> tuple[str, ...]:
    """``body[name]`` as a tuple of strings: a list of strings, or absent / null. A bare string is
    refused (it would be read letter by letter), and so is an object (its keys would be used)."""
    value = body.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Refused(400, f'"{name}" must be a list of strings, for example ["docs/", "*.md"]')
    return tuple(value)


@dataclass(frozen=True)
class SearchRequest:
    """A checked /search or /answer body."""

    text: str
    corpus: str | None
    retriever: str
    k: int
    search_filter: object  # indexing.SearchFilter or None
    mode: str | None = None


def search_request(body: dict, limits: Limits, answering: bool = False) -> SearchRequest:
    """Every field of a /search (``query``) or /answer (``question``, ``mode``) body, checked."""
    from indexing import DEFAULT_RETRIEVER, RETRIEVERS, FilterError, SearchFilter

    text = text_field(body, "question" if answering else "query", limits)
    corpus = optional_string(body, "corpus")
    retriever = choice_field(body, "retriever", RETRIEVERS, DEFAULT_RETRIEVER)
    k = int_field(body, "k", 5 if answering else 10, 1, 1000)
    mode = None
    if answering:
        from answers.modes import ANSWER_MODES, DEFAULT_MODE

        mode = choice_field(body, "mode", ANSWER_MODES, DEFAULT_MODE)
    try:
        search_filter = SearchFilter(string_list(body, "paths"), string_list(body, "titles")) or None
    except FilterError as problem:
        raise Refused(400, f"filter: {problem}") from None
    return SearchRequest(text, corpus, retriever, k, search_filter, mode)


@dataclass(frozen=True)
class EmbeddingsRequest:
    """A checked /v1/embeddings body."""

    texts: list[str]
    model: str | None
    encoding_format: str
    dimensions: int | None


def embeddings_request(body: dict, limits: Limits) -> EmbeddingsRequest:
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise Refused(400, '"input" must be a string or a non-empty list of strings')
    if len(texts) > MAX_INPUTS:
        raise Refused(413, f"at most {MAX_INPUTS} inputs per request")
    for number, text in enumerate(texts):
        if not text.strip():
            raise Refused(400, f"input {number} is empty: there is nothing to embed")
        if len(text) > limits.max_chars:
            raise Refused(413, f"input {number} is {len(text)} characters; the limit is {limits.max_chars} "
                               "(--max-chars)")
    dimensions = body.get("dimensions")
    if dimensions is not None:
        dimensions = int_field(body, "dimensions", 0, 1, 1_000_000)
    return EmbeddingsRequest(texts, optional_string(body, "model"),
                             choice_field(body, "encoding_format", ENCODING_FORMATS, "float"), dimensions)
