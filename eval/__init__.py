"""Evaluation of embedders and retrievers: ranking metrics, retriever runs over BEIR query sets, and
streamlined MTEB scoring of checkpoints (local tasks, suites, results beside the checkpoint, compare).

    from eval import ScoreConfig, score, compare
    record = score(ScoreConfig(embedder="minilm", suite="streamlined"))

The MTEB parts import mteb (seconds), so they load on first use.
"""

from eval.metrics import mean_metric, ndcg_at_k, recall_at_k
from eval.runs import retriever_run, score_run

__all__ = [
    "SUITES",
    "Comparison",
    "DatasetError",
    "EvalError",
    "RunRecord",
    "ScoreConfig",
    "Suite",
    "TaskScore",
    "TaskSpec",
    "compare",
    "kendall_tau",
    "mean_metric",
    "ndcg_at_k",
    "recall_at_k",
    "retriever_run",
    "score",
    "score_run",
]

_LAZY = {
    "ScoreConfig": "eval.harness",
    "score": "eval.harness",
    "Comparison": "eval.compare",
    "compare": "eval.compare",
    "RunRecord": "eval.records",
    "TaskScore": "eval.records",
    "SUITES": "eval.suites",
    "Suite": "eval.suites",
    "TaskSpec": "eval.suites",
    "DatasetError": "eval.errors",
    "EvalError": "eval.errors",
    "kendall_tau": "eval.agreement",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
