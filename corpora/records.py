"""Plain records that cross package boundaries: documents, skipped files, BEIR datasets."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One document: ``doc_id`` is stable (the relative path, or the BEIR ``_id``)."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    metadata: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Skipped:
    """A file that was not loaded, and why (shown to the user, never silently dropped)."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadReport:
    documents: list[Document]
    skipped: list[Skipped]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR folder: corpus, queries and graded relevance judgements for one split."""

    name: str
    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str = "test"

    @property
    def judged_queries(self) -> dict[str, str]:
        """Queries of the split that have at least one judgement."""
        return {qid: text for qid, text in self.queries.items() if qid in self.qrels}
