"""The teacher's view of the pool: how it ranks the pool's chunks for each query.

Filtering, mining and the soft labels all ask the same question, so the teacher answers it
once per stage as a score matrix. A teacher is named like an embedder (``minilm``: dense alone),
``bm25`` (lexical alone) or parts joined by ``+`` (``bm25+minilm``, ``bm25+minilm+e5-small``:
all fused, each part weighted alike). A fused teacher is the default because it is *not the
base*: on SciFact the fusion of BM25 and MiniLM ranks far above either alone, so its labels carry
what the base does not know yet, where a teacher equal to the base only hands the base its own
mistakes back. A second dense part that is another model (``e5-small``) adds what neither the
base nor BM25 knows.

Fusion is CombSUM of per-query z-scores (each retriever's scores over the pool, centred and
scaled per query), which keeps score *margins* (needed for soft labels), unlike rank fusion.
A pair whose positive is not a pool row as it stands (``positive_text``: a title pair's body,
a cloze pair's chunk minus its sentence) has its positive column re-scored on that text.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finetune.rundir import RunDir
from indexing.records import Chunk
from linqrag.errors import ConfigError
from linqrag.files import write_atomic, write_json_atomic

LEXICAL = "bm25"


def parse_teacher(name: str) -> tuple[bool, tuple[str, ...]]:
    """``(uses BM25, dense embedder names)`` of a teacher name such as ``bm25+minilm+e5-small``."""
    parts = [p.strip() for p in name.split("+") if p.strip()]
    if not parts:
        raise ConfigError("teacher name is empty; use e.g. 'bm25+minilm', 'bm25+minilm+e5-small' or 'bm25'")
    dense = tuple(dict.fromkeys(p for p in parts if p != LEXICAL))
    if len(dense) < len([p for p in parts if p != LEXICAL]):
        raise ConfigError(f"teacher {name!r} names a dense embedder twice")
    return LEXICAL in parts, dense


@dataclass(frozen=True)
class TeacherScores:
    """``fused`` is what ranks; ``dense`` (the mean cosine of the dense parts, when there are any)
    calibrates margins."""

    fused: np.ndarray  # (n_pairs, n_chunks)
    dense: np.ndarray | None


def zscore(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row centred and scaled (``(z, mean, std)``; a constant row keeps scale 1)."""
    mean = rows.mean(axis=1, keepdims=True)
    std = rows.std(axis=1, keepdims=True)
    std = np.where(std > 1e-9, std, 1.0)
    return (rows - mean) / std, mean, std


def encode_by_instruction(embedder, queries: Sequence[str], instructions: Sequence[str]) -> np.ndarray:
    """``(n, dim)`` query vectors, each with its own task instruction (one call per instruction)."""
    out = np.zeros((len(queries), embedder.dim), dtype=np.float32)
    groups: dict[str, list[int]] = {}
    for i, instruction in enumerate(instructions):
        groups.setdefault(instruction, []).append(i)
    for instruction, rows in groups.items():
        out[rows] = embedder.encode_queries([queries[i] for i in rows], instruction=instruction)
    return out


class DensePart:
    """One dense embedder of the teacher, with its vectors remembered across stages."""

    def __init__(self, name: str, embedder=None) -> None:
        self.name = name
        if embedder is None:
            from embedder import load_embedder

            embedder = load_embedder(name, backend="torch")
        self.embedder = embedder
        self._queries: dict[tuple[str, str], np.ndarray] = {}  # (instruction, query) -> vector
        self._documents: dict[str, np.ndarray] = {}  # text -> vector

    def chunk_vectors(self, run: RunDir, chunks: Sequence[Chunk], show_progress: bool = True) -> np.ndarray:
        """``(n_chunks, dim)`` unit vectors in ``chunks`` order, cached under ``teacher/`` by signature."""
        folder = run.path("teacher")
        stem = "chunks" if self.name == "minilm" else f"chunks-{self.name}"  # minilm: the older runs' name
        meta_path, vec_path = folder / f"{stem}.json", folder / f"{stem}.npy"
        ids = [c.chunk_id for c in chunks]
        if meta_path.exists() and vec_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("signature") == self.embedder.signature:
                row = {cid: i for i, cid in enumerate(meta.get("ids", []))}
                if all(cid in row for cid in ids):  # the pool, or a part of it (the mine stage's train chunks)
                    return np.load(vec_path)[[row[cid] for cid in ids]]
        vectors = self.embedder.encode_documents([c.indexed_text for c in chunks], show_progress=show_progress)
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        write_atomic(vec_path, buffer.getvalue())
        write_json_atomic(meta_path, {"signature": self.embedder.signature, "ids": ids}, indent=None)
        return vectors

    def query_vectors(self, queries: Sequence[str], instructions: Sequence[str]) -> np.ndarray:
        """Queries encoded with their own task instruction, remembered across stages."""
        keys = list(zip(instructions, queries, strict=True))
        todo = list(dict.fromkeys(k for k in keys if k not in self._queries))
        if todo:
            fresh = encode_by_instruction(self.embedder, [q for _, q in todo], [i for i, _ in todo])
            self._queries.update(zip(todo, fresh, strict=True))
        return np.stack([self._queries[k] for k in keys]) if keys else np.zeros((0, self.embedder.dim), np.float32)

    def document_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Texts that are not pool rows (positive views, LLM negatives), remembered across stages."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._documents))
        if todo:
            self._documents.update(zip(todo, self.embedder.encode_documents(todo), strict=True))
        return np.stack([self._documents[t] for t in texts]) if texts else np.zeros((0, self.embedder.dim))

    def pair_scores(self, query_vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return (query_vectors * self.document_vectors(texts)).sum(axis=1)


class Teacher:
    def __init__(self, name: str, embedders: dict | None = None) -> None:
        """``embedders`` maps dense part names to already loaded embedders (a session's model)."""
        self.name = name
        self.lexical, names = parse_teacher(name)
        self.dense = [DensePart(n, (embedders or {}).get(n)) for n in names]
        self._bm25 = None
        self._bm25_ids: list[str] | None = None

    # --- the lexical part
    def bm25(self, chunks: Sequence[Chunk]):
        from finetune.lexical import PoolBM25

        ids = [c.chunk_id for c in chunks]
        if self._bm25 is None or self._bm25_ids != ids:
            self._bm25, self._bm25_ids = PoolBM25([c.indexed_text for c in chunks]), ids
        return self._bm25

    # --- what the stages ask
    def pool_scores(self, run: RunDir, chunks: Sequence[Chunk], pairs: Sequence, show_progress: bool = True,
                    extra_texts: Sequence[str | None] = ()) -> tuple[TeacherScores, np.ndarray | None]:
        """Scores of every pair's query against every chunk, positives re-scored on ``positive_text``.

        ``extra_texts[i]`` (optional, e.g. the LLM's hard negative) is scored for pair ``i`` on the
        same fused scale; the second return value holds those scores (``-inf`` where None).
        """
        column = {c.chunk_id: i for i, c in enumerate(chunks)}
        queries = [p.query for p in pairs]
        positives = np.array([column[p.chunk_id] for p in pairs], dtype=np.int64)
        views = [i for i, p in enumerate(pairs) if p.positive_text]
        extras = [i for i, t in enumerate(extra_texts) if t]
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (z-scored matrix, z-scored extra texts)
        cosines = []
        for part in self.dense:
            q = part.query_vectors(queries, [p.instruction for p in pairs])
            dense = q @ part.chunk_vectors(run, chunks, show_progress).T
            dense[views, positives[views]] = part.pair_scores(q[views], [pairs[i].positive_text for i in views])
            extra_raw = part.pair_scores(q[extras], [extra_texts[i] for i in extras])
            parts.append(self._normalised(dense, extras, extra_raw))
            cosines.append(dense)
        dense = sum(cosines) / len(cosines) if cosines else None
        if self.lexical:
            bm25 = self.bm25(chunks)
            lexical = bm25.scores(queries)
            view_raw = bm25.pair_scores([queries[i] for i in views], [pairs[i].positive_text for i in views])
            extra_raw = bm25.pair_scores([queries[i] for i in extras], [extra_texts[i] for i in extras])
            lexical[views, positives[views]] = view_raw
            parts.append(self._normalised(lexical, extras, extra_raw))
        fused = sum(p[0] for p in parts) / len(parts)
        extra_scores = None
        if extra_texts:
            extra_scores = np.full(len(pairs), -np.inf, dtype=np.float32)
            extra_scores[extras] = sum(p[1] for p in parts) / len(parts)
        return TeacherScores(fused.astype(np.float32), dense), extra_scores

    @staticmethod
    def _normalised(matrix: np.ndarray, extras: list[int], extra_raw: np.ndarray):
        z, mean, std = zscore(matrix)
        extra_z = (extra_raw - mean[extras, 0]) / std[extras, 0] if extras else np.zeros(0)
        return z, extra_z


def positive_ranks(scores: np.ndarray, positive_columns: Sequence[int]) -> np.ndarray:
    """1-based rank of each row's positive column among all columns (ties count against it)."""
    rows = np.arange(scores.shape[0])
    positive = scores[rows, positive_columns]
    return (scores >= positive[:, None]).sum(axis=1)
