"""Records that flow between the stages; each stage writes them as JSON lines in the run directory."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # indexing loads slowly; the pool's chunks are made where they are read
    from indexing.records import Chunk


class Record:
    """JSON round trip for the frozen dataclasses below (unknown keys are ignored, tuples restored)."""

    def to_json(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: dict):
        names = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        kept = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
        return cls(**kept)


@dataclass(frozen=True)
class ChunkPool:
    """The chunk stage's pool and its split by document (``chunks.jsonl`` and ``split.json``)."""

    chunks: list[Chunk]
    split: dict[str, str]  # chunk_id -> "train" | "heldout"

    def of_split(self, name: str) -> list[Chunk]:
        return [c for c in self.chunks if self.split[c.chunk_id] == name]


@dataclass(frozen=True)
class Task(Record):
    """A retrieval task from the brainstorm (E5 step one): a one-sentence instruction."""

    task_id: str
    instruction: str


@dataclass(frozen=True)
class QueryTemplate(Record):
    """The E5 diversity controls of one generation prompt."""

    template_id: str
    length: str  # "short" | "medium" | "long"
    clarity: str
    difficulty: str
    style: str  # what the query looks like: a question, keywords, a statement


@dataclass(frozen=True)
class SyntheticPair(Record):
    """A generated query whose positive is a real chunk, with the LLM's hard negative if it wrote one."""

    pair_id: str
    chunk_id: str
    task_id: str
    instruction: str
    query: str
    hard_negative: str | None
    template_id: str
    split: str  # "train" | "heldout"
    attempts: int = 1
    repaired: bool = False
    #: Where the pair came from: "llm" (a generated query), "title" (a document's title for its body),
    #: "cloze" (a sentence for the rest of its chunk). Each source is its own task in the batch plan.
    source: str = "llm"
    #: The positive as training and the teacher see it, when it is not the chunk's indexed text
    #: (a title pair's body without the title; a cloze pair's chunk without its sentence).
    positive_text: str | None = None


@dataclass(frozen=True)
class Rejection(Record):
    """A generator output that was not used, and why (counted in the report)."""

    chunk_id: str
    attempt: int
    reason: str
    raw: str = ""


@dataclass(frozen=True)
class TrainingExample(Record):
    """One InfoNCE row: a query, its positive chunk and mined negative chunks (plus the LLM negative text)."""

    pair_id: str
    task_id: str
    instruction: str
    query: str
    positive_id: str
    negative_ids: tuple[str, ...] = ()
    llm_negative: str | None = None
    teacher_positive_score: float = 0.0
    notes: tuple[str, ...] = field(default=())
    source: str = "llm"
    positive_text: str | None = None
    #: Soft labels: the teacher's score margin (positive minus negative) for each of ``negative_ids``,
    #: in the student's cosine units (see ``finetune.mining.calibrate_margins``); empty when not mined.
    teacher_margins: tuple[float, ...] = ()
