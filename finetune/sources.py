"""Pair sources that need no LLM: a document's title for its body, and inverse cloze.

A generator on a CPU writes tens of queries a minute; a corpus has thousands of titles and
sentences for free. Both sources are old, proven self-supervision for retrievers (title -> body:
the S2ORC and Wikipedia pairs of sentence-transformers' training sets; inverse cloze: ORQA/ICT,
a sentence for the passage it was cut from). Each source is its own task in the
homogeneous-batch schedule, so a batch never mixes a title with a cloze sentence.

The positive each pair trains on is stored as ``positive_text``: the body *without* the title for a
title pair, the chunk *without* the sentence for a cloze pair, so the pair cannot be solved by
string matching. Pure functions of the pool and a seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from finetune.records import SyntheticPair
from finetune.text import words
from indexing.records import Chunk

#: Instructions of the two sources (decoder bases read them; encoders ignore instructions).
TITLE_INSTRUCTION = "Given the title of a document, retrieve the passage it heads"
CLOZE_INSTRUCTION = "Given a sentence, retrieve the passage it was taken from"

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9(\"'])")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (a light rule: end mark, space, capital)."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _without_heading(text: str, title: str) -> str:
    """The chunk text without a first line that repeats the title (a Markdown or HTML heading)."""
    first, _, rest = text.strip().partition("\n")
    if " ".join(first.strip("# ").split()).lower() == title.lower():
        return rest.strip()
    return text.strip()


def title_pairs(chunks: Sequence[Chunk], split: dict[str, str], min_words: int = 2,
                first_pair: int = 0) -> list[SyntheticPair]:
    """One pair per titled document: its title -> its first pool chunk's body (title left out).

    Titles that are file names (no space), too short, or repeated across documents (a site's
    page chrome) are skipped.
    """
    seen_doc: dict[str, Chunk] = {}
    for c in sorted(chunks, key=lambda c: (c.doc_id, c.start)):
        seen_doc.setdefault(c.doc_id, c)
    titles: dict[str, int] = {}
    for c in seen_doc.values():
        key = " ".join(c.title.split()).lower()  # the same spelling the lookup below uses
        titles[key] = titles.get(key, 0) + 1
    out: list[SyntheticPair] = []
    for c in seen_doc.values():
        title = " ".join(c.title.split())
        if len(words(title)) < min_words or " " not in title or titles[title.lower()] > 1:
            continue
        body = _without_heading(c.text, title)
        if len(words(body)) < 2 * min_words:
            continue
        out.append(SyntheticPair(
            pair_id=f"t{first_pair + len(out):05d}", chunk_id=c.chunk_id, task_id="title",
            instruction=TITLE_INSTRUCTION, query=title, hard_negative=None, template_id="title",
            split=split[c.chunk_id], source="title", positive_text=body,
        ))
    return out


def cloze_pairs(chunks: Sequence[Chunk], split: dict[str, str], per_chunk: int, seed: int,
                min_words: int = 6, max_words: int = 48, first_pair: int = 0) -> list[SyntheticPair]:
    """Up to ``per_chunk`` pairs per chunk: a sentence -> the chunk with that sentence removed.

    A chunk needs at least two usable sentences (the rest must still say something); the
    sentences are drawn at random, stable for a seed.
    """
    rng = random.Random(seed)
    out: list[SyntheticPair] = []
    for c in chunks:
        spans = [(a, b) for a, b in split_sentences(c.text) if min_words <= len(words(c.text[a:b])) <= max_words]
        if len(split_sentences(c.text)) < 2 or not spans:
            continue
        for a, b in sorted(rng.sample(spans, min(per_chunk, len(spans)))):
            sentence = " ".join(c.text[a:b].split())
            rest = " ".join((c.text[:a] + " " + c.text[b:]).split())
            if len(words(rest)) < min_words:
                continue
            positive = f"{c.title}\n{rest}" if c.title else rest
            out.append(SyntheticPair(
                pair_id=f"c{first_pair + len(out):05d}", chunk_id=c.chunk_id, task_id="cloze",
                instruction=CLOZE_INSTRUCTION, query=sentence, hard_negative=None, template_id="cloze",
                split=split[c.chunk_id], source="cloze", positive_text=positive,
            ))
    return out


def positive_view(pair, chunk: Chunk) -> str:
    """The text a pair's positive is trained and judged as."""
    return pair.positive_text if pair.positive_text else chunk.indexed_text
