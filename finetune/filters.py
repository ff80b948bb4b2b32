"""Stage 4 (Linq's refinement): drop pairs that would teach the wrong thing, counting each rule.

Rules run cheapest first: query length, exact duplicates, near-duplicates (word-set Jaccard),
queries that copy their chunk (share of the query's word 4-grams found in the chunk), and
finally the teacher: the positive must be in the teacher's top k over the whole pool. The
teacher rule is applied to training pairs only: applied to held-out pairs it would keep just the
queries the teacher (often the base itself) already gets right, and flatter the base.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from finetune.config import DomainConfig
from finetune.records import SyntheticPair
from finetune.rundir import RunDir
from finetune.teacher import Teacher, positive_ranks
from finetune.text import words
from linqrag.files import write_json_atomic, write_jsonl_atomic

Rule = Callable[[list[SyntheticPair]], tuple[list[SyntheticPair], list[SyntheticPair]]]


def partition(pairs: Sequence[SyntheticPair], keep: Callable[[SyntheticPair], bool]):
    kept, removed = [], []
    for p in pairs:
        (kept if keep(p) else removed).append(p)
    return kept, removed


def rule_length(pairs: Sequence[SyntheticPair], min_words: int, max_words: int):
    """Queries too short to mean anything or too long to be a query."""
    return partition(pairs, lambda p: min_words <= len(words(p.query)) <= max_words)


def rule_exact_duplicates(pairs: Sequence[SyntheticPair]):
    """The same query (case, spacing and punctuation aside) twice: the first stays."""
    seen: set[str] = set()
    kept, removed = [], []
    for p in pairs:
        key = " ".join(words(p.query))
        (removed if key in seen else kept).append(p)
        seen.add(key)
    return kept, removed


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def rule_near_duplicates(pairs: Sequence[SyntheticPair], threshold: float):
    """A query whose word set overlaps an earlier kept one of the same source by ``threshold`` or
    more (Jaccard). Within a source only: sources differ in shape, and thousands of cloze
    sentences compared with everything would cost quadratic time for nothing."""
    kept, removed = [], []
    sets: dict[str, list[set[str]]] = {}
    for p in pairs:
        s = set(words(p.query))
        same_source = sets.setdefault(p.source, [])
        if any(jaccard(s, other) >= threshold for other in same_source):
            removed.append(p)
        else:
            kept.append(p)
            same_source.append(s)
    return kept, removed


def copy_share(query: str, passage: str, n: int = 4) -> float:
    """Share of the query's word n-grams (n shrinks for short queries) that occur in the passage."""
    q, d = words(query), words(passage)
    n = max(1, min(n, len(q)))
    grams = [tuple(q[i:i + n]) for i in range(len(q) - n + 1)]
    if not grams:
        return 0.0
    have = {tuple(d[i:i + n]) for i in range(len(d) - n + 1)}
    return sum(g in have for g in grams) / len(grams)


def rule_copies_chunk(pairs: Sequence[SyntheticPair], texts: dict[str, str], overlap: float):
    """Queries lifted from their own positive teach string matching, not retrieval. The positive is
    the pair's training view (a cloze pair's chunk without its sentence), so the free sources pass
    unless their text recurs in the positive."""
    return partition(pairs, lambda p: copy_share(p.query, p.positive_text or texts[p.chunk_id]) < overlap)


def rule_teacher(pairs: Sequence[SyntheticPair], ranks: dict[str, int], top_k: int):
    """The teacher does not put the positive in its top ``top_k`` for the query (pairs without a
    rank, i.e. not scored, are kept)."""
    return partition(pairs, lambda p: ranks.get(p.pair_id, 1) <= top_k)


def teacher_ranks(teacher: Teacher, run: RunDir, pairs: Sequence[SyntheticPair],
                  show_progress: bool = True) -> dict[str, int]:
    """Rank of each pair's positive (its ``positive_text`` view where it has one) in the teacher's
    ranking of the whole pool."""
    if not pairs:
        return {}
    pool = run.pool()
    column = {c.chunk_id: i for i, c in enumerate(pool.chunks)}
    scores, _ = teacher.pool_scores(run, pool.chunks, pairs, show_progress)
    ranks = positive_ranks(scores.fused, [column[p.chunk_id] for p in pairs])
    return {p.pair_id: int(r) for p, r in zip(pairs, ranks, strict=True)}


def run_filter_stage(config: DomainConfig, run: RunDir, teacher: Teacher | None, show_progress: bool = True) -> dict:
    run.require("generate")
    pool = run.pool()
    texts = {c.chunk_id: c.indexed_text for c in pool.chunks}
    pairs = run.pairs()
    counts: dict[str, int] = {"input": len(pairs)}
    removed_log: list[dict] = []

    def apply(name: str, rule: Rule, subset: str | None = None) -> None:
        nonlocal pairs
        target = [p for p in pairs if subset is None or p.split == subset]
        _kept, removed = rule(target)
        gone = {p.pair_id for p in removed}
        pairs = [p for p in pairs if p.pair_id not in gone]
        counts[name] = len(removed)
        removed_log.extend({"rule": name, "pair_id": p.pair_id, "query": p.query} for p in removed)

    apply("length", lambda ps: rule_length(ps, config.min_query_words, config.max_query_words))
    apply("exact_duplicate", rule_exact_duplicates)
    apply("near_duplicate", lambda ps: rule_near_duplicates(ps, config.near_duplicate_jaccard))
    apply("copies_chunk", lambda ps: rule_copies_chunk(ps, texts, config.copy_overlap))
    ranks: dict[str, int] = {}
    if config.teacher_top_k > 0 and teacher is not None:
        ranks = teacher_ranks(teacher, run, pairs, show_progress)
        apply("teacher_disagrees", lambda ps: rule_teacher(ps, ranks, config.teacher_top_k), subset="train")
    else:
        counts["teacher_disagrees"] = 0
    write_jsonl_atomic(run.filtered, pairs)
    write_jsonl_atomic(run.path("filter_removed.jsonl"), removed_log)
    write_json_atomic(run.path("teacher_ranks.json"), ranks)
    counts["kept"] = len(pairs)
    summary = {
        "removed_by_rule": {k: v for k, v in counts.items() if k not in ("input", "kept")},
        "input": counts["input"],
        "kept": counts["kept"],
        "train_kept": sum(1 for p in pairs if p.split == "train"),
        "heldout_kept": sum(1 for p in pairs if p.split == "heldout"),
        "teacher": config.teacher if config.teacher_top_k > 0 else None,
        "teacher_top_k": config.teacher_top_k,
    }
    run.mark_done("filter", summary)
    return summary
