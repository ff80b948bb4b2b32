"""Which sentence of a chunk a citation points at, and the chunk as HTML with it marked."""

from __future__ import annotations

import html
from collections.abc import Sequence

from answers.words import SENTENCE, content_words


def highlight_span(chunk_text: str, reference: str) -> tuple[int, int] | None:
    """Character span of the chunk's sentence that best matches ``reference`` (the citing sentence or the question)."""
    words = content_words(reference)
    if not words:
        return None
    best, best_score = None, 0.0
    for match in SENTENCE.finditer(chunk_text):
        overlap = len(words & content_words(match.group(0)))
        score = overlap / len(words)
        if overlap and score > best_score:
            best, best_score = (match.start(), match.end()), score
    if best is None:
        return None
    start, end = best
    while start < end and chunk_text[start].isspace():
        start += 1
    return start, end


def highlighted_html(chunk_text: str, span: tuple[int, int] | Sequence[tuple[int, int]] | None) -> str:
    """The chunk as escaped HTML with ``span`` (one range or several) wrapped in ``<mark>``."""
    if not span:
        return html.escape(chunk_text)
    ranges = [span] if isinstance(span[0], int) else list(span)
    out, cursor = [], 0
    for start, end in sorted(ranges):
        start = max(start, cursor)
        if end <= start:
            continue
        out += [html.escape(chunk_text[cursor:start]), "<mark>", html.escape(chunk_text[start:end]), "</mark>"]
        cursor = end
    out.append(html.escape(chunk_text[cursor:]))
    return "".join(out)
