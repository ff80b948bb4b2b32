"""Evaluation of embedders and retrievers: ranking metrics (more to come: mteb tasks, suites)."""

from eval.metrics import mean_metric, ndcg_at_k, recall_at_k

__all__ = ["mean_metric", "ndcg_at_k", "recall_at_k"]
