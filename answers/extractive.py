"""Extractive answers: the retrieved passages' own sentences that best answer the question, cited.

The offline default author of answers. A 135M generator invents names and facts; quoting cannot:
every sentence of an extractive answer is a verbatim span of a cited chunk (offsets kept, so the
page highlights exactly what was quoted). Spans are scored by the embedder (question vs sentence)
and by the question's rare words found in the sentence; when the best span scores below a
calibrated threshold the answer is a plain "not found" instead of a weak guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from answers.records import Answer, Citation
from answers.sentences import clean_span, sentence_spans
from answers.words import content_words
from indexing.records import Hit

NOT_FOUND = "I found no passage that answers this."


@dataclass(frozen=True)
class ExtractiveConfig:
    """How many sentences an answer quotes and when it says nothing was found."""

    max_sentences: int = 3
    min_score: float = 0.42  #: best span below this: "not found" (calibrated on the demo questions, bench/answers.py)
    relative_keep: float = 0.85  #: further spans join when they score at least this share of the best
    lexical_weight: float = 0.5  #: share of the score from the question's (idf-weighted) words
    min_content_words: int = 3  #: shorter spans (headings, fragments) are never quoted alone
    max_span_chars: int = 500
    max_embedded: int = 48  #: spans embedded per answer (the rest are dropped by lexical score first)
    duplicate_jaccard: float = 0.6  #: content-word Jaccard at which a span repeats one already quoted


@dataclass(frozen=True)
class Span:
    """A quotable piece of a hit: ``hit`` is the 0-based hit index, offsets are into ``hit.text``."""

    hit: int
    start: int
    end: int
    text: str  # whitespace collapsed, as quoted
    score: float = 0.0
    semantic: float = 0.0
    lexical: float = 0.0
    title: str = ""  # the document's title: embedded with the span, as chunks are indexed

    @property
    def context(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


def candidate_spans(hits: Sequence[Hit], config: ExtractiveConfig) -> list[Span]:
    spans = []
    for i, hit in enumerate(hits):
        for start, end in sentence_spans(hit.text):
            quoted = clean_span(hit.text[start:end])
            if len(quoted) > config.max_span_chars or len(content_words(quoted)) < config.min_content_words:
                continue
            spans.append(Span(i, start, end, quoted, title=str(hit.metadata.get("title") or "")))
    return spans


def lexical_scores(question: str, texts: Sequence[str]) -> np.ndarray:
    """Share of the question's content words each text holds, weighted by idf over the candidates,
    so a rare name in the question counts more than a word every span has."""
    asked = content_words(question)
    if not asked or not texts:
        return np.zeros(len(texts), dtype=np.float32)
    bags = [content_words(t) for t in texts]
    n = len(bags)
    weight = {w: math.log(1 + (n + 1) / (1 + sum(w in bag for bag in bags))) for w in asked}
    total = sum(weight.values())
    return np.array([sum(weight[w] for w in asked if w in bag) / total for bag in bags], dtype=np.float32)


def score_spans(question: str, spans: Sequence[Span], embedder, config: ExtractiveConfig) -> list[Span]:
    """Each span scored ``(1 - w) * cosine + w * lexical``; without an embedder, lexical only.

    Only the ``max_embedded`` spans with the most question words (ties: the better-ranked hit) are
    embedded: five 512-token chunks hold ~100 sentences, and a span sharing no word with the
    question rarely wins."""
    if not spans:
        return []
    lexical = lexical_scores(question, [s.text for s in spans])
    if len(spans) > config.max_embedded:
        keep = sorted(np.argsort(-lexical, kind="stable")[:config.max_embedded])
        spans, lexical = [spans[i] for i in keep], lexical[keep]
    if embedder is None:
        semantic = lexical
    else:
        q = embedder.encode_queries([question])[0]
        semantic = embedder.encode_documents([s.context for s in spans]) @ q
    w = config.lexical_weight
    scores = (1 - w) * semantic + w * lexical
    return [replace(s, score=float(v), semantic=float(c), lexical=float(x))
            for s, v, c, x in zip(spans, scores, semantic, lexical, strict=True)]


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def select_spans(scored: Sequence[Span], config: ExtractiveConfig) -> list[Span]:
    """The best span, then near-best ones that say something new; empty when the best is too weak."""
    ranked = sorted(scored, key=lambda s: (-s.score, s.hit, s.start))
    if not ranked or ranked[0].score < config.min_score:
        return []
    chosen: list[Span] = []
    for span in ranked:
        if len(chosen) == config.max_sentences or span.score < config.relative_keep * ranked[0].score:
            break
        words = content_words(span.text)
        if any(_jaccard(words, content_words(c.text)) >= config.duplicate_jaccard for c in chosen):
            continue
        chosen.append(span)
    return chosen


def compose(chosen: Sequence[Span], hits: Sequence[Hit]) -> Answer:
    """Quoted spans grouped by source (best source first), in document order inside a source."""
    order: list[int] = list(dict.fromkeys(s.hit for s in chosen))
    numbers = {hit: n for n, hit in enumerate(order, 1)}
    pieces, citations = [], []
    for hit in order:
        own = sorted((s for s in chosen if s.hit == hit), key=lambda s: s.start)
        pieces.extend(f"{s.text} [{numbers[hit]}]" for s in own)
        citations.append(Citation(numbers[hit], hits[hit], spans=tuple((s.start, s.end) for s in own)))
    return Answer(" ".join(pieces), citations, generated=False, mode="extractive")


def extractive_answer(question: str, hits: Sequence[Hit], embedder=None,
                      config: ExtractiveConfig | None = None) -> Answer:
    """An answer quoted from ``hits``, or :data:`NOT_FOUND` with the closest passages as references."""
    config = config or ExtractiveConfig()
    scored = score_spans(question, candidate_spans(hits, config), embedder, config)
    chosen = select_spans(scored, config)
    if chosen:
        return compose(chosen, hits)
    best = max((s.score for s in scored), default=0.0)
    return Answer(NOT_FOUND, [], generated=False, mode="extractive",
                  notes=[(f"no sentence of the {len(hits)} retrieved passages scored above {config.min_score:.2f} "
                          f"(best {best:.2f}); the closest passages are listed below")],
                  references=list(hits))
