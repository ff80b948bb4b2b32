"""One careful HTTP POST for every remote call (embedding servers, chat endpoints).

httpx's read timeout restarts with every byte, so a server that drips one byte every few seconds
holds a plain call forever. :func:`post_json` reads the answer as a stream against an overall
deadline that also covers the retries, retries what is worth retrying (lost connections, 408,
429, 5xx; ``Retry-After`` honoured) with jittered backoff, and redacts credentials from any error
body it reports, since some endpoints echo the request's headers back.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from linqrag.errors import LinqragError

#: Statuses that a later attempt may not get: timeouts, throttling, conflicts, server errors.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def redact(text: str) -> str:
    """``text`` without anything that looks like a credential (Authorization values, ``sk-...`` keys)."""
    text = re.sub(r"(?i)(authorization|api[-_ ]?key|bearer)([\"':= ]+)[^\s\"',}]+", r"\1\2[redacted]", text)
    return re.sub(r"\b(sk|rk|pk)-[A-Za-z0-9_-]{8,}", "[redacted]", text)


@dataclass(frozen=True)
class CallLimits:
    """How long one call may take: ``timeout`` per connect/read, ``deadline`` for the whole call
    with its ``retries``."""

    timeout: float = 60.0
    deadline: float = 300.0
    retries: int = 4


class HTTPCallError(LinqragError, RuntimeError):
    """A call that did not succeed: ``status`` is the last HTTP status (``None``: no answer);
    ``gave_up`` says the retries or the deadline ran out (else the endpoint refused outright)."""

    def __init__(self, message: str, status: int | None, gave_up: bool) -> None:
        super().__init__(message)
        self.status = status
        self.gave_up = gave_up


def _attempt(client, url: str, payload: dict, headers: dict | None, start: float, limits: CallLimits,
             left: float) -> tuple[int, dict, bytes]:
    body = bytearray()
    with client.stream("POST", url, json=payload, headers=headers, timeout=min(limits.timeout, left)) as response:
        for piece in response.iter_bytes():
            body += piece
            if time.monotonic() - start > limits.deadline:
                raise TimeoutError
        return response.status_code, dict(response.headers), bytes(body)


def post_json(client, url: str, payload: dict, limits: CallLimits = CallLimits(),
              headers: dict | None = None, on_attempt: Callable[[], None] | None = None) -> bytes:
    """The body of a 2xx answer to ``POST url`` with ``payload``, through the httpx ``client``.

    Raises :class:`HTTPCallError`: at once for a status not worth retrying (its redacted body in
    the message), or when the retries or the deadline are spent."""
    import httpx

    start = time.monotonic()
    problem, status, attempt = "", None, 0
    for attempt in range(limits.retries + 1):
        left = limits.deadline - (time.monotonic() - start)
        if left <= 0:
            break
        if on_attempt is not None:
            on_attempt()
        try:
            status, answer_headers, content = _attempt(client, url, payload, headers, start, limits, left)
        except httpx.TransportError as error:  # refused, reset, timed out: worth another try
            problem, status = f"{error.__class__.__name__}: {error}", None
        except TimeoutError:
            problem = "the answer was still arriving at the deadline"
            break
        else:
            if status < 300:
                return content
            problem = f"HTTP {status}: {redact(content[:300].decode('utf-8', 'replace'))}"
            if status not in RETRY_STATUS:
                raise HTTPCallError(f"{url} refused the request ({problem})", status, gave_up=False)
            retry_after = answer_headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit():
                time.sleep(min(float(retry_after), max(left, 0)))
                continue
        if attempt < limits.retries:
            time.sleep(min(0.25 * 2**attempt * (1 + random.random()), max(left, 0), 8.0))
    raise HTTPCallError(f"{url} gave no answer after {attempt + 1} attempts within {limits.deadline:g} s "
                        f"(last: {problem or 'deadline reached'})", status, gave_up=True)
