"""The teacher embedder's view of the pool: chunk vectors (cached in the run dir) and query scores.

Filtering and mining both ask the same question, "how does the teacher rank the pool for this
query?", so the chunk vectors are computed once per teacher signature and reused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from finetune.rundir import RunDir
from indexing.records import Chunk


class Teacher:
    def __init__(self, name: str) -> None:
        from embedder import load_embedder

        self.embedder = load_embedder(name)
        self.name = name

    def chunk_vectors(self, run: RunDir, chunks: Sequence[Chunk], show_progress: bool = True) -> np.ndarray:
        """``(n_chunks, dim)`` unit vectors in ``chunks`` order, cached under ``teacher/``."""
        folder = run.path("teacher")
        meta_path, vec_path = folder / "chunks.json", folder / "chunks.npy"
        ids = [c.chunk_id for c in chunks]
        if meta_path.exists() and vec_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta.get("signature") == self.embedder.signature and meta.get("ids") == ids:
                return np.load(vec_path)
        vectors = self.embedder.encode_documents([c.indexed_text for c in chunks], show_progress=show_progress)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "chunks.tmp.npy"
        np.save(tmp, vectors)
        tmp.replace(vec_path)
        meta_path.write_text(json.dumps({"signature": self.embedder.signature, "ids": ids}))
        return vectors

    def query_vectors(self, queries: Sequence[str], instructions: Sequence[str]) -> np.ndarray:
        """Queries encoded with their own task instruction (grouped, so each group is one call)."""
        out = np.zeros((len(queries), self.embedder.dim), dtype=np.float32)
        groups: dict[str, list[int]] = {}
        for i, instruction in enumerate(instructions):
            groups.setdefault(instruction, []).append(i)
        for instruction, rows in groups.items():
            out[rows] = self.embedder.encode_queries([queries[i] for i in rows], instruction=instruction)
        return out


def positive_ranks(scores: np.ndarray, positive_columns: Sequence[int]) -> np.ndarray:
    """1-based rank of each row's positive column among all columns (ties count against it)."""
    rows = np.arange(scores.shape[0])
    positive = scores[rows, positive_columns]
    return (scores >= positive[:, None]).sum(axis=1)
