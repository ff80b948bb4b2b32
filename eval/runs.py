"""Runs of a retriever over a query set, at document level, scored against qrels."""

from __future__ import annotations

from collections.abc import Mapping

from tqdm.auto import tqdm

from eval.metrics import Qrels, Run, mean_metric


def retriever_run(retriever, queries: Mapping[str, str], depth: int = 100, show_progress: bool = True) -> Run:
    """``{query id: {doc id: score}}``; a chunked document scores as its best chunk."""
    run: dict[str, dict[str, float]] = {}
    for qid, text in tqdm(queries.items(), desc=f"search {getattr(retriever, 'name', '')}".strip(),
                          unit="query", disable=not show_progress):
        run[qid] = dict(retriever.search(text, depth).doc_ranking())
    return run


def score_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """The figures we report everywhere: nDCG@10 (the BEIR main score), recall@10 and recall@100."""
    return {
        "ndcg@10": mean_metric(run, qrels, "ndcg", 10)[0],
        "recall@10": mean_metric(run, qrels, "recall", 10)[0],
        "recall@100": mean_metric(run, qrels, "recall", 100)[0],
    }
