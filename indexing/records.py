"""Records of the index: chunks, hits and search results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Chunk:
    """A piece of a document as indexed; ``start``/``end`` are character offsets into the document."""

    chunk_id: str
    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    start: int = 0
    end: int = 0

    @property
    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the title (as BEIR does) then the chunk."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    def metadata(self) -> dict:
        return {"doc_id": self.doc_id, "title": self.title, "source": self.source, "start": self.start, "end": self.end}

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    score: float
    rank: int
    text: str
    metadata: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def doc_id(self) -> str:
        return self.metadata.get("doc_id", self.chunk_id)


@dataclass(frozen=True)
class SearchResult:
    """Ranked hits of one retriever for one query, and the time it took."""

    retriever: str
    query: str
    hits: list[Hit]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [h.chunk_id for h in self.hits]

    def doc_ranking(self) -> list[tuple[str, float]]:
        """Documents in rank order, each scored by its best chunk (BEIR evaluation of chunked corpora)."""
        seen: dict[str, float] = {}
        for hit in self.hits:
            seen.setdefault(hit.doc_id, hit.score)
        return list(seen.items())


@dataclass(frozen=True)
class BuildReport:
    index_key: str
    embedded: int
    kept: int
    removed: int
    documents: int
    skipped: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.embedded + self.kept

    def summary(self) -> str:
        return f"embedded {self.embedded} new chunks, kept {self.kept}, removed {self.removed}"
