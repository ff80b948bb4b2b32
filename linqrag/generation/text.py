"""Chat messages checked, prompts fitted to a window, answers cut at stop strings (both whole and streamed)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from linqrag.generation.config import Message

log = logging.getLogger(__name__)


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
