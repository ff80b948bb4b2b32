"""InfoNCE over in-batch and hard negatives, as E5-mistral and Linq train; MarginMSE soft labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from finetune.config import DECODER_TEMPERATURE


def info_nce(queries: torch.Tensor, documents: torch.Tensor, targets: torch.Tensor,
             temperature: float = DECODER_TEMPERATURE,
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


def margin_mse(queries: torch.Tensor, documents: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
               columns: torch.Tensor, margins: torch.Tensor,
               temperature: float = DECODER_TEMPERATURE) -> torch.Tensor:
    """MarginMSE (Hofstaetter et al.; GPL's loss): the student's margin between a query's positive
    and one of its negatives should equal the teacher's.

    For each triple ``k``: query ``rows[k]``, negative column ``columns[k]``, teacher margin
    ``margins[k]`` (cosine units). Both margins are divided by ``temperature`` so the loss is on
    the scale of the InfoNCE logits and one weight balances the two. Zero when there are no triples.
    """
    if rows.numel() == 0:
        return queries.sum() * 0.0
    q = queries[rows]
    positive = (q * documents[targets[rows]]).sum(dim=-1)
    negative = (q * documents[columns]).sum(dim=-1)
    return F.mse_loss((positive - negative) / temperature, margins / temperature)
