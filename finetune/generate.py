"""Stage 3: the training pairs, made by each chosen pair source (:mod:`finetune.sources`: LLM
queries, titles, inverse cloze, any registered) in registry order, with the generator outputs
rejected on the way; what each source made is counted in the summary.
"""

from __future__ import annotations

import time
from collections import Counter

from finetune.config import DomainConfig
from finetune.llm import CachedGenerator
from finetune.records import Rejection, SyntheticPair, Task
from finetune.rundir import RunDir
from finetune.sources import SourceInput, chosen_sources
from linqrag.files import write_jsonl_atomic


def run_generate_stage(config: DomainConfig, run: RunDir, tasks: list[Task], llm: CachedGenerator,
                       show_progress: bool = True) -> dict:
    """Every chosen source's pairs (the LLM's for the first ``max_queries`` training chunks and
    ``max_heldout_queries`` held-out chunks of the pool; the free sources' for every chunk)."""
    given = SourceInput(config, run.pool(), tasks, llm, show_progress)
    ordered: list[SyntheticPair] = []
    rejections: list[Rejection] = []
    by_source, notes = {}, {}
    t0 = time.perf_counter()
    for source in chosen_sources(config.pair_sources):
        made = source.make(given)
        ordered += made.pairs
        rejections += made.rejections
        by_source[source.name] = len(made.pairs)
        notes.update(made.summary)
    repeated = [pid for pid, n in Counter(p.pair_id for p in ordered).items() if n > 1]
    if repeated:
        raise RuntimeError(f"pair ids made twice (each source needs a prefix of its own): {repeated[:5]}")
    write_jsonl_atomic(run.pairs_file, ordered)
    write_jsonl_atomic(run.rejections, rejections)
    summary = {
        "pairs": len(ordered),
        "by_source": by_source,
        "train_pairs": sum(1 for p in ordered if p.split == "train"),
        "heldout_pairs": sum(1 for p in ordered if p.split == "heldout"),
        "with_hard_negative": sum(1 for p in ordered if p.hard_negative),
        **notes,
        "rejected_outputs": len(rejections),
        "rejected_by_reason": dict(Counter(r.reason for r in rejections).most_common()),
        "generator": llm.name,  # which model and backend wrote the answers (the cache's key prefix)
        "generated_now": llm.generated,
        "generation_seconds": round(llm.seconds, 1),
        "queries_per_minute": round(llm.per_minute, 2) if llm.per_minute else None,
        "stage_seconds": round(time.perf_counter() - t0, 1),
    }
    run.mark_done("generate", summary)
    return summary
