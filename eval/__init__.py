"""Evaluation of embedders and retrievers: ranking metrics, retriever runs over BEIR query sets."""

from eval.metrics import mean_metric, ndcg_at_k, recall_at_k
from eval.runs import retriever_run, score_run

__all__ = ["mean_metric", "ndcg_at_k", "recall_at_k", "retriever_run", "score_run"]
