"""The training order of the Linq recipe: homogeneous task batches, then a short mixed phase.

Each batch of the first phase holds examples of one task only, tasks taking turns (interleaved
in proportion to their size, ties in a fixed order), so in-batch negatives share the query format
and the loss is not solved by telling tasks
apart. The last ``mixed_steps`` batches (<= 20) mix tasks, to keep the model from drifting
towards the task trained last. The plan is a pure function of the examples and the seed, so a
resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from finetune.records import TrainingExample


def _batches(indices: list[int], examples: Sequence[TrainingExample], size: int) -> list[list[int]]:
    """Consecutive batches of ``size`` with no positive twice in a batch (a clash waits for the next)."""
    out: list[list[int]] = []
    waiting = list(indices)
    while waiting:
        batch, positives, rest = [], set(), []
        for i in waiting:
            if len(batch) < size and examples[i].positive_id not in positives:
                batch.append(i)
                positives.add(examples[i].positive_id)
            else:
                rest.append(i)
        out.append(batch)
        waiting = rest
    return [b for b in out if len(b) >= 2]


def homogeneous_batches(examples: Sequence[TrainingExample], size: int, rng: random.Random,
                        task_order: Sequence[str]) -> list[list[int]]:
    """One pass over the data: each task's shuffled examples cut into batches, the tasks' batches
    interleaved evenly (a task with three times the batches comes three times as often), ties
    broken by ``task_order``. Interleaving matters once sources differ in size: run one after
    another, a large source (thousands of cloze pairs) would fill a short training alone."""
    by_task: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_task.setdefault(ex.task_id, []).append(i)
    order = [t for t in task_order if t in by_task] + sorted(t for t in by_task if t not in task_order)
    keyed: list[tuple[float, int, list[int]]] = []
    for rank, task in enumerate(order):
        members = by_task[task]
        rng.shuffle(members)
        batches = _batches(members, examples, size)
        keyed.extend(((k + 0.5) / len(batches), rank, batch) for k, batch in enumerate(batches))
    return [batch for _, _, batch in sorted(keyed, key=lambda item: item[:2])]


def mixed_batches(examples: Sequence[TrainingExample], size: int, rng: random.Random) -> list[list[int]]:
    members = list(range(len(examples)))
    rng.shuffle(members)
    return _batches(members, examples, size)


def plan_batches(examples: Sequence[TrainingExample], batch_size: int, steps: int, mixed_steps: int, seed: int,
                 task_order: Sequence[str] = ()) -> list[list[int]]:
    """``steps`` batches of example indices: ``steps - mixed_steps`` homogeneous ones (passes over the
    data repeat as needed), then ``mixed_steps`` mixed ones."""
    if len(examples) < 2:
        raise ValueError(f"training needs at least 2 examples, got {len(examples)}")
    rng = random.Random(seed)
    mixed = min(mixed_steps, steps)
    plan: list[list[int]] = []
    while len(plan) < steps - mixed:
        one_pass = homogeneous_batches(examples, batch_size, rng, task_order)
        if not one_pass:  # every task too small for a batch of two: fall back to mixing
            one_pass = mixed_batches(examples, batch_size, rng)
        plan.extend(one_pass)
    plan = plan[: steps - mixed]
    tail: list[list[int]] = []
    while len(tail) < mixed:
        tail.extend(mixed_batches(examples, batch_size, rng))
    return plan + tail[:mixed]
