"""Length-sorted batching with batch-size back-off on out-of-memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OOM error, or the RuntimeError other backends raise for the same condition."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def length_sorted_order(lengths: Sequence[int]) -> np.ndarray:
    """Indices that sort inputs longest first, so each batch pads to similar lengths.

    Longest first also means an out-of-memory error, if any, comes on the first batch.
    """
    return np.argsort(-np.asarray(lengths), kind="stable")


def run_batches(
    items: Sequence,
    batch_size: int,
    forward: Callable[[Sequence], np.ndarray],
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Apply ``forward`` to consecutive batches of ``items`` and stack the rows.

    On out-of-memory the batch size is halved and the failed batch retried, down to 1; the
    smaller size is kept for the rest of the run. Returns ``(len(items), dim)``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    outputs: list[np.ndarray] = []
    start = 0
    while start < len(items):
        batch = items[start : start + batch_size]
        try:
            outputs.append(forward(batch))
        except Exception as error:
            if not is_out_of_memory(error) or batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            log.warning("out of memory; retrying with batch size %d", batch_size)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start += len(batch)
        if progress is not None:
            progress(len(batch))
    return np.concatenate(outputs, axis=0) if outputs else np.zeros((0, 0), dtype=np.float32)
