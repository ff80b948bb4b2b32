"""The pair sources, each one entry of :data:`PAIR_SOURCES`: ``llm`` (a generated query for a chunk),
``title`` (a document's title for its body), ``cloze`` (a sentence for the rest of its chunk), and
whatever :func:`register_pair_source` adds.

Everything that names a source reads the registry: the config's default and its check, the
``--sources`` help and check, the brainstorm stage (run only when a chosen source needs the LLM) and
the generate stage (each chosen source's pairs, in registry order). Adding a source is one
:class:`PairSource` (docs/extending.md walks through one).

The two free sources need no LLM. A generator on a CPU writes tens of queries a minute; a corpus
has thousands of titles and sentences for free. Both are old, proven self-supervision for
retrievers (title -> body: the S2ORC and Wikipedia pairs of sentence-transformers' training sets;
inverse cloze: ORQA/ICT, a sentence for the passage it was cut from). Each source is its own task
in the homogeneous-batch schedule, so a batch never mixes a title with a cloze sentence.

The positive each pair trains on is stored as ``positive_text``: the body *without* the title for a
title pair, the chunk *without* the sentence for a cloze pair, so the pair cannot be solved by
string matching. Pure functions of the pool and a seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from finetune.queries import generated_pairs
from finetune.records import ChunkPool, Rejection, SyntheticPair, Task
from finetune.text import words
from indexing.records import Chunk
from linqrag.errors import ConfigError
from linqrag.registry import Registry

if TYPE_CHECKING:
    from finetune.config import DomainConfig
    from finetune.llm import CachedGenerator

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


@dataclass(frozen=True)
class SourceInput:
    """What a source makes its pairs from in the generate stage."""

    config: DomainConfig
    pool: ChunkPool  #: the chunk pool and its train / held-out split
    tasks: Sequence[Task]  #: the brainstormed tasks (empty unless a chosen source needs the LLM)
    llm: CachedGenerator  #: the cached generator (loaded only when an answer is not cached)
    show_progress: bool = True


@dataclass(frozen=True)
class SourcePairs:
    """A source's output: its pairs, the generator outputs it rejected, and lines for the stage summary."""

    pairs: list[SyntheticPair]
    rejections: list[Rejection] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PairSource:
    """One way to make training pairs from the pool.

    ``make`` returns pairs whose ``source`` (and, for a batch of their own, ``task_id``) is the
    source's name, whose ``pair_id`` is unique across sources (a prefix of its own), and whose
    ``split`` is their chunk's (``pool.split``), so held-out chunks stay held out."""

    name: str
    help: str  #: a few words for ``--sources``
    make: Callable[[SourceInput], SourcePairs]
    needs_llm: bool = False  #: the brainstorm stage and the generator run only for such a source
    default: bool = True  #: chosen when a run does not say (``DomainConfig.pair_sources``)


#: Every pair source by name, in the order their pairs are made.
PAIR_SOURCES: Registry[PairSource] = Registry("pair source", ConfigError)
#: Add a source (a name is registered once).
register_pair_source = PAIR_SOURCES.register


def default_pair_sources() -> tuple[str, ...]:
    return tuple(name for name, source in PAIR_SOURCES.items() if source.default)


def check_pair_sources(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, or :class:`ConfigError` when empty or naming an unknown source."""
    names = tuple(names)
    unknown = [name for name in names if name not in PAIR_SOURCES]
    if unknown or not names:
        raise ConfigError(f"pair_sources must be a non-empty subset of {', '.join(PAIR_SOURCES)}; got {names}")
    return names


def chosen_sources(names: Sequence[str]) -> list[PairSource]:
    """The sources ``names`` chooses, in registry order (the order their pairs are made)."""
    return [source for name, source in PAIR_SOURCES.items() if name in names]


def needs_llm(names: Sequence[str]) -> bool:
    return any(source.needs_llm for source in chosen_sources(names))


def sources_help() -> str:
    """The sources, one ``name (help)`` each, for ``--sources``."""
    return ", ".join(f"{source.name} ({source.help})" for source in PAIR_SOURCES.values())


def _llm(given: SourceInput) -> SourcePairs:
    pairs, rejections, summary = generated_pairs(given.config, given.pool, given.tasks, given.llm,
                                                 given.show_progress)
    return SourcePairs(pairs, rejections, summary)


def _titles(given: SourceInput) -> SourcePairs:
    return SourcePairs(title_pairs(given.pool.chunks, given.pool.split))


def _cloze(given: SourceInput) -> SourcePairs:
    pool, config, pairs = given.pool, given.config, []
    for split, per_chunk in (("train", config.cloze_per_chunk), ("heldout", config.heldout_cloze_per_chunk)):
        pairs += cloze_pairs(pool.of_split(split), pool.split, per_chunk, config.seed + 11, first_pair=len(pairs))
    return SourcePairs(pairs)


register_pair_source(PairSource("llm", "generated queries", _llm, needs_llm=True))
register_pair_source(PairSource("title", "title -> body", _titles))
register_pair_source(PairSource("cloze", "sentence -> rest of its chunk", _cloze))
