"""InfoNCE over in-batch and hard negatives, as E5-mistral and Linq train."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(queries: torch.Tensor, documents: torch.Tensor, targets: torch.Tensor, temperature: float = 0.02,
             exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of each query over every document in the batch.

    ``queries`` ``(B, d)`` and ``documents`` ``(N, d)`` are unit vectors, so ``q @ d.T`` is the
    cosine; ``targets`` ``(B,)`` is the column of each query's positive. All other columns (the
    other queries' positives and every hard negative) are negatives. ``exclude`` ``(B, N)`` marks
    columns that must not count as negatives for a row (a duplicate of its positive); the target
    column itself is never excluded.
    """
    logits = queries @ documents.T / temperature
    if exclude is not None:
        keep_target = F.one_hot(targets, num_classes=documents.shape[0]).bool()
        logits = logits.masked_fill(exclude & ~keep_target, float("-inf"))
    return F.cross_entropy(logits, targets)
