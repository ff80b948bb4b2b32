"""BM25 over the run's chunk pool as a matrix, so the teacher can score any text against a query.

The index's bm25s answers "top k of the corpus"; the teacher needs more: the score of every
pool chunk for thousands of queries at once, and the score of texts that are not pool rows
(a title pair's body, a cloze pair's chunk minus its sentence) under the pool's statistics.
Same tokenisation as the index (bm25s: English stemmer and stopwords), Lucene-style BM25.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    from indexing.bm25 import tokenize

    return tokenize(list(texts), return_ids=False) if texts else []


class PoolBM25:
    """BM25 weights of the pool's documents; ``k1``/``b`` as bm25s' defaults."""

    def __init__(self, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        docs = _tokens(texts)
        self.vocab: dict[str, int] = {}
        for doc in docs:
            for token in doc:
                self.vocab.setdefault(token, len(self.vocab))
        n = len(docs)
        df = np.zeros(len(self.vocab), dtype=np.float64)
        for doc in docs:
            for token in set(doc):
                df[self.vocab[token]] += 1
        self.idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        self.avgdl = max(1.0, float(np.mean([len(d) for d in docs]))) if docs else 1.0
        self.doc_matrix = self._weights(docs)  # (n_docs, vocab)

    def _weights(self, docs: list[list[str]]) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for r, doc in enumerate(docs):
            counts: dict[int, int] = {}
            for token in doc:
                if token in self.vocab:
                    counts[self.vocab[token]] = counts.get(self.vocab[token], 0) + 1
            norm = self.k1 * (1 - self.b + self.b * len(doc) / self.avgdl)
            for col, tf in counts.items():
                rows.append(r)
                cols.append(col)
                vals.append(self.idf[col] * tf / (tf + norm))  # Lucene BM25, as bm25s scores it
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(self.vocab)), dtype=np.float32)

    def _query_matrix(self, queries: Sequence[str]) -> sparse.csr_matrix:
        rows, cols = [], []
        for r, query in enumerate(_tokens(queries)):
            for col in {self.vocab[t] for t in query if t in self.vocab}:
                rows.append(r)
                cols.append(col)
        return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                 shape=(len(queries), len(self.vocab)))

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """``(n_queries, n_docs)`` BM25 scores (each query term counted once, as bm25s does)."""
        return np.asarray((self._query_matrix(queries) @ self.doc_matrix.T).todense(), dtype=np.float32)

    def pair_scores(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """``(n,)`` score of ``texts[i]`` for ``queries[i]`` under the pool's statistics."""
        if not queries:
            return np.zeros(0, dtype=np.float32)
        q = self._query_matrix(queries)
        d = self._weights(_tokens(texts))
        return np.asarray(q.multiply(d).sum(axis=1), dtype=np.float32).ravel()
