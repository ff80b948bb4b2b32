"""Stage 5: hard negatives mined with the teacher (NV-Retriever / Linq style).

For each training query the teacher ranks the training chunks (held-out chunks never become
training text). The positive is skipped; candidates scoring above ``margin`` times the
positive's score are skipped as likely false negatives (unlabelled positives); negatives are
sampled from a rank window of what remains, so they are hard but not the very top, where most
false negatives sit. The LLM-written hard negative is kept beside them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finetune.chunk import load_pool
from finetune.config import DomainConfig
from finetune.generate import load_pairs
from finetune.records import TrainingExample
from finetune.rundir import RunDir, iter_jsonl, write_jsonl
from finetune.teacher import Teacher


@dataclass(frozen=True)
class MinedNegatives:
    ids: list[str]
    false_negatives_skipped: int
    window: tuple[int, int]  # 1-based ranks actually sampled from (after skipping)


def mine_negatives(scores: np.ndarray, ids: Sequence[str], positive_id: str, n: int, window: tuple[int, int],
                   margin: float, rng: random.Random) -> MinedNegatives:
    """``n`` negatives for one query from the teacher's ``scores`` over ``ids``.

    Ranking is by score, the positive removed. A candidate is a likely false negative when its
    score exceeds ``margin * positive_score`` (NV-Retriever's TopK-PercPos; with ``margin=1`` only
    candidates above the positive go). The window ``(start, end)`` is 1-based and inclusive over
    the remaining ranking; when the pool is too small for it, it slides back to what exists.
    """
    order = np.argsort(-scores, kind="stable")
    positive_score = float(scores[list(ids).index(positive_id)]) if positive_id in ids else float("inf")
    threshold = margin * positive_score if positive_score > 0 else positive_score
    ranked, skipped = [], 0
    for i in order:
        if ids[i] == positive_id:
            continue
        if scores[i] > threshold:
            skipped += 1
            continue
        ranked.append(ids[i])
    start, end = window
    end = min(end, len(ranked))
    start = min(start, max(1, end - n + 1))
    candidates = ranked[start - 1:end]
    picked = rng.sample(candidates, min(n, len(candidates)))
    return MinedNegatives(sorted(picked, key=candidates.index), skipped, (start, end))


def llm_negative_scores(teacher: Teacher, pairs, query_vectors: np.ndarray) -> list[float]:
    """Teacher score of each pair's LLM-written negative for its query (-inf where there is none).

    Small generators often write a "negative" that restates the query or the positive; the same
    false-negative margin as for mined chunks decides whether it is kept.
    """
    rows = [i for i, p in enumerate(pairs) if p.hard_negative]
    out = [float("-inf")] * len(pairs)
    if rows:
        vectors = teacher.embedder.encode_documents([pairs[i].hard_negative for i in rows])
        for i, vector in zip(rows, vectors):
            out[i] = float(query_vectors[i] @ vector)
    return out


def run_mine_stage(config: DomainConfig, run: RunDir, teacher: Teacher, show_progress: bool = True) -> dict:
    run.require("filter")
    pool = load_pool(run)
    pairs = [p for p in load_pairs(run, run.filtered) if p.split == "train"]
    train_chunks = pool.of_split("train")
    column = {c.chunk_id: i for i, c in enumerate(pool.chunks)}
    all_vectors = teacher.chunk_vectors(run, pool.chunks, show_progress)
    vectors = all_vectors[[column[c.chunk_id] for c in train_chunks]]
    ids = [c.chunk_id for c in train_chunks]
    rng = random.Random(config.seed + 5)
    examples: list[TrainingExample] = []
    skipped_total, counts = 0, []
    llm_dropped = 0
    if pairs:
        queries = teacher.query_vectors([p.query for p in pairs], [p.instruction for p in pairs])
        scores = queries @ vectors.T
        llm_scores = llm_negative_scores(teacher, pairs, queries)
        for p, row, llm_score in zip(pairs, scores, llm_scores):
            mined = mine_negatives(row, ids, p.chunk_id, config.negatives_per_query,
                                   (config.mine_rank_start, config.mine_rank_end), config.false_negative_margin, rng)
            skipped_total += mined.false_negatives_skipped
            counts.append(len(mined.ids))
            positive_score = float(row[ids.index(p.chunk_id)])
            llm_negative = p.hard_negative
            if llm_negative and llm_score > config.false_negative_margin * positive_score:
                llm_negative, llm_dropped = None, llm_dropped + 1
            examples.append(TrainingExample(
                pair_id=p.pair_id, task_id=p.task_id, instruction=p.instruction, query=p.query,
                positive_id=p.chunk_id, negative_ids=tuple(mined.ids), llm_negative=llm_negative,
                teacher_positive_score=round(positive_score, 4),
            ))
    write_jsonl(run.examples, examples)
    summary = {
        "examples": len(examples),
        "mined_negatives": int(sum(counts)),
        "false_negatives_skipped": skipped_total,
        "with_llm_negative": sum(1 for e in examples if e.llm_negative),
        "llm_negatives_dropped_as_false_negatives": llm_dropped,
        "window": [config.mine_rank_start, config.mine_rank_end],
        "margin": config.false_negative_margin,
    }
    run.mark_done("mine", summary)
    return summary


def load_examples(run: RunDir) -> list[TrainingExample]:
    run.require("mine")
    return [TrainingExample.from_json(row) for row in iter_jsonl(run.examples)]
