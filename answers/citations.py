"""Citations parsed out of a generated answer, or inferred by word overlap when the model wrote none;
and the passages answer shown when nothing writes one.

Small local models often forget to cite; :func:`attach_citations` then attributes each answer sentence
to the source it overlaps most and marks those citations as inferred, so every citation shown points
to a real chunk and the reader can tell a model's own citation from ours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from answers.records import Answer, Citation
from answers.words import SENTENCE, content_words
from indexing.records import Hit

_CITATION = re.compile(r"\[(\d{1,3})\]")


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
    for sentence in SENTENCE.findall(text):
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
    return [s for s in SENTENCE.findall(answer) if f"[{number}]" in s]
