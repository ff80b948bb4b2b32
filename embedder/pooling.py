"""Pooling functions: token states ``(batch, seq, dim)`` + mask ``(batch, seq)`` -> ``(batch, dim)``."""

from __future__ import annotations

import torch

POOLING_MODES = ("last", "mean", "cls")


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """State of each row's last real token, whatever the padding side.

    The index of the last 1 in the mask is found from the right, so one formula serves left
    padding (the last column) and right padding (``length - 1``) alike.
    """
    seq_len = attention_mask.shape[1]
    last = seq_len - 1 - attention_mask.flip(dims=[1]).to(torch.long).argmax(dim=1)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, last.to(hidden.device)]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real tokens' states (sentence-transformers' default for MiniLM)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def cls_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """First token's state (BERT's [CLS]); assumes right padding, as encoders use."""
    return hidden[:, 0]


def pool(mode: str, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    if mode == "last":
        return last_token_pool(hidden, attention_mask)
    if mode == "mean":
        return mean_pool(hidden, attention_mask)
    if mode == "cls":
        return cls_pool(hidden, attention_mask)
    raise ValueError(f"unknown pooling mode {mode!r}; expected one of {POOLING_MODES}")
