"""Grounded answers: numbered sources in the prompt, citations parsed back out, passages highlighted.

Pure functions over hits and strings, so the app, a CLI and the tests share them. Small local
models often forget to cite; ``attach_citations`` then attributes each answer sentence to the
source it overlaps most and marks those citations as inferred, so every citation shown points to
a real chunk and the reader can tell a model's own citation from ours.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from indexing.records import Hit

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources given. Cite the sources you use with their "
    "numbers in square brackets, like [1] or [2]. If the sources do not contain the answer, say that "
    "you cannot answer from these documents. Be brief."
)

_CITATION = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"[A-Za-z0-9]+")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_STOP = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "how", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "what", "when", "where", "which", "who", "why", "will", "with", "do", "does", "did", "can", "you", "your", "i", "we", "they", "he", "she", "not", "no", "yes"]
)


@dataclass(frozen=True)
class Citation:
    number: int  # 1-based, as written in the answer
    hit: Hit
    inferred: bool = False  # attributed by overlap, not written by the model
    spans: tuple[tuple[int, int], ...] = ()  # exact quoted ranges of hit.text (extractive answers)


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    generated: bool = True  # False: not written by a language model (quoted or listed passages)
    notes: list[str] = field(default_factory=list)
    mode: str = "generated"  # extractive | generated | passages: what wrote the text
    references: list[Hit] = field(default_factory=list)  # passages shown when none is cited


MODE_LABELS = {
    "extractive": "Extractive answer: sentences quoted from the cited passages",
    "generated": "Written by a language model from the retrieved passages",
    "passages": "No answer written: the best passages",
}


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning: "erupts" and "erupted" match, "the" does not."""
    words = [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP and len(w) > 1]
    return set(_stemmer().stemWords(words))


def format_sources(hits: Sequence[Hit], max_chars: int = 1200) -> str:
    blocks = []
    for i, hit in enumerate(hits, 1):
        title = hit.metadata.get("title") or hit.metadata.get("source", "").rsplit("/", 1)[-1]
        text = hit.text if len(hit.text) <= max_chars else hit.text[:max_chars] + " ..."
        blocks.append(f"[{i}] {title}\n{text}".strip())
    return "\n\n".join(blocks)


def build_messages(question: str, hits: Sequence[Hit], history: Sequence[dict] = (), max_history: int = 4,
                   max_chars: int = 1200) -> list[dict]:
    """Chat messages: rules and numbered sources as the system turn, the last turns, then the question.

    Sources sit in the system turn and the question stands alone as the user turn: small local
    models (SmolLM2-135M) answer the question that way, while with sources and question in one
    user turn they often ignore both.
    """
    messages = [{"role": "system", "content": f"{SYSTEM_PROMPT}\n\nSources:\n\n{format_sources(hits, max_chars)}"}]
    for turn in list(history)[-max_history:]:
        if turn.get("role") in ("user", "assistant") and turn.get("content"):
            messages.append({"role": turn["role"], "content": str(turn["content"])})
    messages.append({"role": "user", "content": question})
    return messages


def cited_numbers(answer: str, n_sources: int) -> list[int]:
    """Source numbers the answer cites, in order of first mention; numbers with no source are dropped."""
    out: list[int] = []
    for match in _CITATION.finditer(answer):
        n = int(match.group(1))
        if 1 <= n <= n_sources and n not in out:
            out.append(n)
    return out


def strip_invalid_citations(answer: str, n_sources: int) -> str:
    return _CITATION.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= n_sources else "", answer)


def best_source(sentence: str, hits: Sequence[Hit]) -> tuple[int, float]:
    """1-based number of the source sharing most content words with ``sentence``, and that share."""
    words = content_words(sentence)
    if not words or not hits:
        return 0, 0.0
    shares = [len(words & content_words(h.text)) / len(words) for h in hits]
    best = max(range(len(hits)), key=lambda i: (shares[i], -i))
    return best + 1, shares[best]


def attach_citations(answer: str, hits: Sequence[Hit], min_share: float = 0.25, min_words: int = 2) -> Answer:
    """The model's valid citations, or inferred ones when it wrote none: a sentence is attributed to
    the source holding at least ``min_words`` of its content words and ``min_share`` of them."""
    text = strip_invalid_citations(answer, len(hits)).strip()
    numbers = cited_numbers(text, len(hits))
    if numbers:
        return Answer(text, [Citation(n, hits[n - 1]) for n in numbers])
    inferred: list[int] = []
    pieces = []
    for sentence in _SENTENCE.findall(text):
        number, share = best_source(sentence, hits)
        if number and share >= min_share and share * len(content_words(sentence)) >= min_words:
            pieces.append(sentence.rstrip() + f" [{number}]")
            if number not in inferred:
                inferred.append(number)
        else:
            pieces.append(sentence.rstrip())
    if not inferred:
        return Answer(text, [], notes=[("the answer cites no source and overlaps none of them; "
                                        "the retrieved passages are listed below")], references=list(hits))
    return Answer(" ".join(p.strip() for p in pieces), [Citation(n, hits[n - 1], inferred=True) for n in inferred],
                  notes=["the model wrote no citations; they were attributed by word overlap"])


def passages_answer(hits: Sequence[Hit], reason: str, max_chars: int = 300) -> Answer:
    """What the page shows when no generator is available: the best passages, cited."""
    if not hits:
        return Answer("No passage matched the question.", [], generated=False, notes=[reason], mode="passages")
    lines = [f"No answer generator is available ({reason}). The best passages:"]
    for i, hit in enumerate(hits, 1):
        snippet = " ".join(hit.text.split())
        lines.append(f"- [{i}] {snippet[:max_chars]}{' ...' if len(snippet) > max_chars else ''}")
    return Answer("\n".join(lines), [Citation(i, h) for i, h in enumerate(hits, 1)], generated=False, notes=[reason],
                  mode="passages")


def citing_sentences(answer: str, number: int) -> list[str]:
    return [s for s in _SENTENCE.findall(answer) if f"[{number}]" in s]


def highlight_span(chunk_text: str, reference: str) -> tuple[int, int] | None:
    """Character span of the chunk's sentence that best matches ``reference`` (the citing sentence or the question)."""
    words = content_words(reference)
    if not words:
        return None
    best, best_score = None, 0.0
    for match in _SENTENCE.finditer(chunk_text):
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
