"""Extractive answers: the retrieved passages' own text that best answers the question, quoted and cited.

The offline default author of answers. A 135M generator invents names and facts; quoting cannot:
every piece of an extractive answer is a verbatim span of a cited chunk (offsets kept, so the page
highlights exactly what was quoted).

The reader keeps what retrieval found. Its candidates are wider than one sentence: a sentence with
the sentence after it (the fact often follows the sentence that names the topic), and a lead-in
sentence with the list, literal block or table rows it introduces. Each is scored by the embedder
(question vs its best piece), by the question's rare words it holds (idf over the candidates), and
by whether it holds what the question asks for and the question does not already say (a number, a
version, a code name, a reason: :mod:`answers.asks`); a piece added for nothing costs a little.
Candidates are ranked across all retrieved chunks. When the best scores below a threshold set on
held-out questions (bench/answers.py) the answer is a plain "not found" instead of a weak guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from answers.asks import asked_for, holds_asked
from answers.records import Answer, Citation
from answers.sentences import Unit, clean_span, units
from answers.words import content_words
from indexing.records import Hit

NOT_FOUND = "I found no passage that answers this."


@dataclass(frozen=True)
class ExtractiveConfig:
    """How candidates are built and scored, how much an answer quotes and when it says nothing was found."""

    max_quotes: int = 3  #: candidates quoted per answer
    min_score: float = 0.484  #: best candidate below this: "not found" (split-conformal, alpha 0.15, dev half)
    relative_keep: float = 0.8  #: a further candidate joins when it scores at least this share of the best
    lexical_weight: float = 0.5  #: share of the base score from the question's (idf-weighted) words
    asked_bonus: float = 0.2  #: the candidate holds what the question asks for (a number, a version ...)
    piece_cost: float = 0.04  #: each piece beyond the first (so a neighbour joins only when it adds something)
    rank_weight: float = 0.02  #: per retrieval rank below the first hit
    min_content_words: int = 3  #: shorter single pieces (headings, fragments) are never quoted alone
    max_span_chars: int = 500
    max_list_chars: int = 700  #: a lead-in with the list or literal it introduces may be this long
    max_block_chars: int = 200  #: one line of a table or code quoted alone
    use_headings: bool = True  #: read each candidate with its section's heading (embedded and matched)
    max_embedded: int = 64  #: pieces embedded per answer (the rest are dropped by lexical score first)
    duplicate_jaccard: float = 0.6  #: content-word Jaccard at which a candidate repeats one already quoted


@dataclass(frozen=True)
class Span:
    """A quotable candidate: ``hit`` is the 0-based hit index, offsets are into ``hit.text``; ``pieces``
    are the unit ranges it joins (one for a sentence)."""

    hit: int
    start: int
    end: int
    text: str  # whitespace collapsed, as quoted
    score: float = 0.0
    semantic: float = 0.0
    lexical: float = 0.0
    title: str = ""  # the document's title: embedded with the pieces, as chunks are indexed
    heading: str = ""  # the heading of the section it stands in: read with it, embedded and matched
    pieces: tuple[tuple[int, int], ...] = ()
    piece_texts: tuple[str, ...] = ()  # each piece as quoted (what the embedder compares)
    asked: bool = False  # holds what the question asks for


def _span(i: int, hit: Hit, run: Sequence[Unit]) -> Span:
    start, end = run[0].start, run[-1].end
    return Span(i, start, end, clean_span(hit.text[start:end]), title=str(hit.metadata.get("title") or ""),
                heading=run[0].heading, pieces=tuple((u.start, u.end) for u in run),
                piece_texts=tuple(clean_span(hit.text[u.start:u.end]) for u in run))


def _following(text: str, pieces: Sequence[Unit], j: int) -> int | None:
    """The index of the piece right after piece ``j`` (only whitespace between), or None."""
    for k in range(j + 1, len(pieces)):
        if pieces[k].start >= pieces[j].end:
            return k if not text[pieces[j].end:pieces[k].start].strip() else None
    return None


def _quotable(span: Span, config: ExtractiveConfig, limit: int) -> bool:
    return len(span.text) <= limit and len(content_words(span.text)) >= config.min_content_words


def _hit_candidates(i: int, hit: Hit, config: ExtractiveConfig) -> list[Span]:
    """Pieces alone (a sentence, clause, list item or one line of a table or code), each with the piece
    after it, and a lead-in (ending in ":") with each longer stretch of the list or block it introduces."""
    text, pieces = hit.text, units(hit.text)
    out = []
    for j, unit in enumerate(pieces):
        alone = _span(i, hit, [unit])
        limit = config.max_block_chars if unit.kind == "block" else config.max_span_chars
        if _quotable(alone, config, limit):
            out.append(alone)
        k = _following(text, pieces, j)
        if k is None:
            continue
        out.append(_span(i, hit, [unit, pieces[k]]))
        if text[unit.start:unit.end].rstrip().endswith(":") and unit.kind != "block":
            run = [unit, pieces[k]]
            while (k := _following(text, pieces, k)) is not None and pieces[k].kind in ("item", "block"):
                if pieces[k].end - unit.start > config.max_list_chars:
                    break
                run.append(pieces[k])
                out.append(_span(i, hit, run))
    return [s for s in out if len(s.pieces) == 1 or _quotable(s, config, config.max_list_chars)]


def candidate_spans(hits: Sequence[Hit], config: ExtractiveConfig) -> list[Span]:
    return [span for i, hit in enumerate(hits) for span in _hit_candidates(i, hit, config)]


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


def _piece_cosines(question: str, spans: Sequence[Span], lexical: np.ndarray, embedder,
                   config: ExtractiveConfig) -> dict[tuple[int, int, int], float]:
    """Cosine of the question to each piece of the best ``max_embedded`` candidates (by lexical score)."""
    wanted: dict[tuple[int, int, int], str] = {}
    for k in np.argsort(-lexical, kind="stable"):
        span = spans[k]
        for (start, end), text in zip(span.pieces, span.piece_texts, strict=True):
            key = (span.hit, start, end)
            if key not in wanted and len(wanted) < config.max_embedded:
                heading = span.heading if config.use_headings else ""
                wanted[key] = "\n".join(p for p in (span.title, heading, text) if p)
        if len(wanted) >= config.max_embedded:
            break
    if not wanted:
        return {}
    q = embedder.encode_queries([question])[0]
    vectors = embedder.encode_documents(list(wanted.values()))
    return dict(zip(wanted, (vectors @ q).tolist(), strict=True))


def score_spans(question: str, spans: Sequence[Span], embedder, config: ExtractiveConfig) -> list[Span]:
    """Each candidate scored ``(1 - w) * cosine + w * lexical + bonus - costs`` (see the module text);
    without an embedder the cosine is replaced by the lexical score."""
    if not spans:
        return []
    lexical = lexical_scores(question, [f"{s.heading}\n{s.text}" if config.use_headings else s.text for s in spans])
    cosines = _piece_cosines(question, spans, lexical, embedder, config) if embedder is not None else {}
    wants = asked_for(question)
    w = config.lexical_weight
    out = []
    for span, lex in zip(spans, lexical, strict=True):
        if embedder is None:
            semantic = float(lex)
        else:
            known = [cosines[(span.hit, s, e)] for s, e in span.pieces if (span.hit, s, e) in cosines]
            if not known:
                continue
            semantic = max(known)
        asked = holds_asked(wants, question, span.text)
        value = ((1 - w) * semantic + w * float(lex) + config.asked_bonus * asked
                 - config.piece_cost * (len(span.pieces) - 1) - config.rank_weight * span.hit)
        out.append(replace(span, score=value, semantic=semantic, lexical=float(lex), asked=asked))
    return out


def score_hits(question: str, hits: Sequence[Hit], embedder, config: ExtractiveConfig) -> list[Span]:
    return score_spans(question, candidate_spans(hits, config), embedder, config)


def best_score(question: str, hits: Sequence[Hit], embedder, config: ExtractiveConfig | None = None) -> float:
    """The score of the best candidate: what the "not found" threshold is compared with."""
    scored = score_hits(question, hits, embedder, config or ExtractiveConfig())
    return max((s.score for s in scored), default=0.0)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def select_spans(scored: Sequence[Span], config: ExtractiveConfig) -> list[Span]:
    """The best candidate, then near-best ones that neither overlap nor repeat it; empty when the best is
    too weak."""
    ranked = sorted(scored, key=lambda s: (-s.score, s.hit, s.start, s.end))
    if not ranked or ranked[0].score < config.min_score:
        return []
    chosen: list[Span] = []
    for span in ranked:
        if len(chosen) == config.max_quotes or span.score < config.relative_keep * ranked[0].score:
            break
        if any(c.hit == span.hit and c.start < span.end and span.start < c.end for c in chosen):
            continue
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
    scored = score_hits(question, hits, embedder, config)
    chosen = select_spans(scored, config)
    if chosen:
        return compose(chosen, hits)
    best = max((s.score for s in scored), default=0.0)
    return Answer(NOT_FOUND, [], generated=False, mode="extractive",
                  notes=[(f"no passage of the {len(hits)} retrieved passages scored above {config.min_score:.2f} "
                          f"(best {best:.2f}); the closest passages are listed below")],
                  references=list(hits))
