"""What an answer is: its text, what wrote it, and the numbered citations pointing at retrieved chunks."""

from __future__ import annotations

from dataclasses import dataclass, field

from indexing.records import Hit, SearchResult


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
    #: the search the answer was written from (set by :func:`answers.pipeline.answer_question`)
    retrieval: SearchResult | None = field(default=None, compare=False, repr=False)


MODE_LABELS = {
    "extractive": "Extractive answer: sentences quoted from the cited passages",
    "generated": "Written by a language model from the retrieved passages",
    "passages": "No answer written: the best passages",
}
