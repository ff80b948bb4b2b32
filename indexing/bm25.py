"""BM25 over chunks with bm25s (English stemmer, stopwords), saved beside the vector index."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

LANGUAGE = "english"


def _quiet() -> None:
    # bm25s sets its own logger to DEBUG on import; keep its per-call chatter out of our output.
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer(LANGUAGE)


def tokenize(texts: list[str], stemmer=None, show_progress: bool = False, return_ids: bool = True):
    """bm25s tokens (English stopwords, stemmed); ``return_ids=False`` gives lists of strings."""
    import bm25s

    _quiet()
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer or _stemmer(), show_progress=show_progress,
                          return_ids=return_ids)


class BM25Index:
    """bm25s index plus the chunk ids its rows stand for."""

    def __init__(self, retriever, ids: list[str]) -> None:
        self.retriever = retriever
        self.ids = ids
        self.stemmer = _stemmer()

    @classmethod
    def build(cls, ids: list[str], texts: list[str], show_progress: bool = False) -> BM25Index:
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(tokenize(texts, show_progress=show_progress), show_progress=show_progress)
        return cls(retriever, list(ids))

    def save(self, directory: Path) -> None:
        """Written into a sibling and swapped in, so a killed save leaves the old index whole."""
        partial = directory.with_name(directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        self.retriever.save(str(partial))
        (partial / "linqrag_ids.json").write_text(json.dumps(self.ids))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            directory.rename(old)
        partial.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        import bm25s

        ids = json.loads((directory / "linqrag_ids.json").read_text())
        retriever = bm25s.BM25.load(str(directory))
        rows = (getattr(retriever, "scores", None) or {}).get("num_docs")
        ids_ok = isinstance(ids, list) and all(isinstance(i, str) for i in ids)
        if not ids_ok or (rows is not None and rows != len(ids)):
            raise ValueError(f"its id list ({len(ids) if isinstance(ids, list) else type(ids).__name__}) "
                             f"does not match its {rows} rows")
        return cls(retriever, ids)

    def mask(self, ids: list[str]) -> np.ndarray:
        """Row weights for :meth:`search`: 1 for the chunks in ``ids``, 0 for every other."""
        wanted = set(ids)
        return np.fromiter((1.0 if cid in wanted else 0.0 for cid in self.ids), dtype=np.float32, count=len(self.ids))

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top ``k`` ``(chunk_id, score)``; chunks scoring 0 (no shared term, or masked out by ``mask``
        from :meth:`mask`) are left out. The mask applies before the top ``k`` are taken."""
        if not self.ids:
            return []
        tokens = tokenize([query], stemmer=self.stemmer)
        if not tokens.vocab or all(len(t) == 0 for t in tokens.ids):
            return []
        docs, scores = self.retriever.retrieve(tokens, k=min(k, len(self.ids)), show_progress=False,
                                               weight_mask=mask)
        return [(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=False) if s > 0]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (for tests and analysis)."""
        tokens = tokenize([query], stemmer=self.stemmer, show_progress=False)
        words = [w for w, i in sorted(tokens.vocab.items(), key=lambda x: x[1])]
        return self.retriever.get_scores([words[i] for i in tokens.ids[0]])
