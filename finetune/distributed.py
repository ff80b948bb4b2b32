"""Several training processes (``torchrun --nproc-per-node N -m finetune.domain ...``).

Every rank builds the same global batch from the same plan, embeds only its share of the queries
and documents, and gathers the others' embeddings, so InfoNCE sees every in-batch negative of the
global batch, as one process would. The gathered copies carry no gradient; each rank's backward
therefore gives the gradient of the global loss through its own embeddings, and the ranks' sum of
those is the single-process gradient (:func:`sum_gradients`). Parameters start equal (same seed)
and take equal steps, so they stay equal without broadcasting. Files are written by rank 0 only.
One process (no ``WORLD_SIZE``) changes nothing.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch

#: Stages other than training run on rank 0 while the others wait; generation can take hours.
WAIT = datetime.timedelta(hours=24)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes: torchrun's ``RANK`` of ``WORLD_SIZE``."""

    rank: int = 0  #: torchrun's RANK: which share of each batch this process embeds
    #: torchrun's WORLD_SIZE: how many processes share each batch
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run directory and prints."""
        return self.rank == 0

    def share(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """``[lo, hi)`` of ``n`` rows that ``rank`` (default: this one) embeds: contiguous, sizes
        differing by at most 1."""
        rank = self.rank if rank is None else rank
        base, extra = divmod(n, self.world)
        lo = rank * base + min(rank, extra)
        return lo, lo + base + (1 if rank < extra else 0)


#: A single process: what every function assumes unless told otherwise.
ONE_PROCESS = Ranks()


def ranks() -> Ranks:
    """This process's rank and the world size, from torchrun's environment; the process group is
    started on first call (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return ONE_PROCESS
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=WAIT)
    return Ranks(dist.get_rank(), dist.get_world_size())


def barrier(where: Ranks) -> None:
    if where.world > 1:
        import torch.distributed as dist

        dist.barrier()


def gather_rows(local: torch.Tensor, n: int, where: Ranks) -> torch.Tensor:
    """The ``(n, d)`` tensor whose rows ``where.share(n, r)`` come from rank ``r``; this rank's rows
    keep their gradient, the others' are constants."""
    if where.world == 1:
        return local
    import torch.distributed as dist

    sizes = [where.share(n, r) for r in range(where.world)]
    longest = max(hi - lo for lo, hi in sizes)
    padded = local.new_zeros((longest, *local.shape[1:]))
    padded[: local.shape[0]] = local.detach()
    pieces = [torch.empty_like(padded) for _ in range(where.world)]
    dist.all_gather(pieces, padded.contiguous())
    rows = [local if r == where.rank else pieces[r][: hi - lo] for r, (lo, hi) in enumerate(sizes)]
    return torch.cat(rows)


def sum_gradients(params: Iterable[torch.nn.Parameter], where: Ranks) -> None:
    """Add up the ranks' gradients: each holds the global loss's gradient through its own rows."""
    if where.world == 1:
        return
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
