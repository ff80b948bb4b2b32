"""Stage 5: hard negatives mined with the teacher (NV-Retriever / Linq style).

For each training query the teacher ranks the training chunks (held-out chunks never become
training text). The positive is skipped; candidates scoring above ``margin`` times the
positive's score are skipped as likely false negatives (unlabelled positives); negatives are
sampled from a rank window of what remains, so they are hard but not the very top, where most
false negatives sit. The LLM-written hard negative is kept beside them. The teacher's score
margins between the positive and each mined negative are stored as soft labels (MarginMSE,
GPL-style) for the train stage.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finetune.config import DomainConfig
from finetune.records import SyntheticPair, TrainingExample
from finetune.rundir import RunDir
from finetune.teacher import Teacher
from linqrag.files import write_jsonl_atomic

#: Cosine units per fused z-unit when the teacher has no dense part to calibrate against.
FALLBACK_MARGIN_FACTOR = 0.05


def false_negative_threshold(positive_score: float, margin: float) -> float:
    """Scores above this are likely false negatives: ``margin`` x the positive's (the positive's own
    score when it is not positive, where a share would move the bar the wrong way)."""
    return margin * positive_score if positive_score > 0 else positive_score


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
    threshold = false_negative_threshold(positive_score, margin)
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


def calibrate_margins(fused_margins: np.ndarray, dense_margins: np.ndarray | None) -> float:
    """The factor that turns fused z-score margins into cosine margins (MarginMSE soft labels).

    The student scores by cosine, the fused teacher by z-scores; the factor is the ratio of the
    median margins of the teacher's own dense part on the same (query, positive, negative)
    triples, so a typical soft label asks for the margin a real embedder draws. Without a dense
    part (a BM25-only teacher) a z-unit counts as ``FALLBACK_MARGIN_FACTOR`` of cosine.
    """
    fused = fused_margins[np.isfinite(fused_margins) & (fused_margins > 0)]
    if dense_margins is None or not len(fused):
        return FALLBACK_MARGIN_FACTOR
    dense = dense_margins[np.isfinite(dense_margins)]
    ratio = float(np.median(dense)) / float(np.median(fused)) if len(dense) else FALLBACK_MARGIN_FACTOR
    return ratio if ratio > 0 else FALLBACK_MARGIN_FACTOR


def run_mine_stage(config: DomainConfig, run: RunDir, teacher: Teacher, show_progress: bool = True) -> dict:
    run.require("filter")
    pool = run.pool()
    pairs = [p for p in run.pairs(run.filtered) if p.split == "train"]
    train_chunks = pool.of_split("train")
    ids = [c.chunk_id for c in train_chunks]
    rng = random.Random(config.seed + 5)
    skipped_total, counts, llm_dropped = 0, [], 0
    mined: list[tuple[SyntheticPair, list[str], str | None, float, np.ndarray]] = []
    dense_margins: list[np.ndarray] = []  # the teacher's dense part on the same triples: calibrates the labels
    if pairs:
        scores, llm_scores = teacher.pool_scores(run, train_chunks, pairs, show_progress,
                                                 extra_texts=[p.hard_negative for p in pairs])
        column = {c: i for i, c in enumerate(ids)}
        for i, p in enumerate(pairs):
            row = scores.fused[i]
            found = mine_negatives(row, ids, p.chunk_id, config.negatives_per_query,
                                   (config.mine_rank_start, config.mine_rank_end), config.false_negative_margin, rng)
            skipped_total += found.false_negatives_skipped
            counts.append(len(found.ids))
            positive = column[p.chunk_id]
            positive_score = float(row[positive])
            llm_negative = p.hard_negative
            if llm_negative and llm_scores[i] > false_negative_threshold(positive_score, config.false_negative_margin):
                llm_negative, llm_dropped = None, llm_dropped + 1
            negatives = [column[n] for n in found.ids]
            mined.append((p, found.ids, llm_negative, positive_score, positive_score - row[negatives]))
            if scores.dense is not None:
                dense_margins.append(scores.dense[i, positive] - scores.dense[i, negatives])
    factor = calibrate_margins(np.concatenate([m[4] for m in mined]) if mined else np.zeros(0),
                               np.concatenate(dense_margins) if dense_margins else None)
    examples = [TrainingExample(
        pair_id=p.pair_id, task_id=p.task_id, instruction=p.instruction, query=p.query,
        positive_id=p.chunk_id, negative_ids=tuple(negative_ids), llm_negative=llm_negative,
        teacher_positive_score=round(positive_score, 4), source=p.source, positive_text=p.positive_text,
        teacher_margins=tuple(round(float(m) * factor, 5) for m in fused_margins),
    ) for p, negative_ids, llm_negative, positive_score, fused_margins in mined]
    write_jsonl_atomic(run.examples_file, examples)
    summary = {
        "examples": len(examples),
        "by_source": dict(Counter(e.source for e in examples)),
        "mined_negatives": int(sum(counts)),
        "false_negatives_skipped": skipped_total,
        "with_llm_negative": sum(1 for e in examples if e.llm_negative),
        "llm_negatives_dropped_as_false_negatives": llm_dropped,
        "window": [config.mine_rank_start, config.mine_rank_end],
        "margin": config.false_negative_margin,
        "teacher": teacher.name,
        "soft_label_factor": round(factor, 5),
    }
    run.mark_done("mine", summary)
    return summary
