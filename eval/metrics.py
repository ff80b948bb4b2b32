"""Ranking metrics as trec_eval / pytrec_eval compute them (linear gains), pure functions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Run = Mapping[str, Mapping[str, float]]  # query id -> {doc id: score}
Qrels = Mapping[str, Mapping[str, int]]  # query id -> {doc id: graded relevance}


def _ranked(scores: Mapping[str, float]) -> list[str]:
    # trec_eval breaks score ties by document id, descending.
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    gains = [max(relevance.get(d, 0), 0) for d in ranked[:k]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((r for r in relevance.values() if r > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    relevant = {d for d, r in relevance.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mean_metric(run: Run, qrels: Qrels, metric: str = "ndcg", k: int = 10) -> tuple[float, dict[str, float]]:
    """Mean over the judged queries (a judged query missing from ``run`` scores 0), and per query."""
    fn = {"ndcg": ndcg_at_k, "recall": recall_at_k}[metric]
    per_query = {}
    for qid, relevance in qrels.items():
        if not any(r > 0 for r in relevance.values()):
            continue
        per_query[qid] = fn(_ranked(run.get(qid, {})), relevance, k)
    return (sum(per_query.values()) / len(per_query) if per_query else 0.0), per_query
