"""Stage 7: score the base and every checkpoint on the held-out synthetic queries.

Held-out queries were generated from chunks no training example saw (whole held-out documents);
each is searched over the entire pool and scored by nDCG@10 and recall@10 with ``eval.metrics``
(chunk-level relevance: its own chunk). Checkpoints are loaded through ``embedder.load_embedder``
exactly as the app and indexes will load them.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from eval.metrics import mean_metric
from finetune.chunk import load_pool
from finetune.config import DomainConfig
from finetune.generate import load_pairs
from finetune.records import SyntheticPair
from finetune.rundir import RunDir, write_json
from finetune.train import checkpoint_dirs
from indexing.records import Chunk

DEPTH = 100


def score_embedder(embedder, pairs: Sequence[SyntheticPair], chunks: Sequence[Chunk], k: int = 10) -> dict:
    """nDCG@k and recall@k of ``embedder`` for ``pairs`` over ``chunks`` (one relevant chunk each)."""
    docs = embedder.encode_documents([c.indexed_text for c in chunks])
    by_instruction: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_instruction.setdefault(p.instruction, []).append(i)
    queries = np.zeros((len(pairs), docs.shape[1]), dtype=np.float32)
    for instruction, rows in by_instruction.items():
        queries[rows] = embedder.encode_queries([pairs[i].query for i in rows], instruction=instruction)
    scores = queries @ docs.T
    ids = [c.chunk_id for c in chunks]
    run: dict[str, dict[str, float]] = {}
    for p, row in zip(pairs, scores):
        top = np.argsort(-row, kind="stable")[:DEPTH]
        run[p.pair_id] = {ids[j]: float(row[j]) for j in top}
    qrels = {p.pair_id: {p.chunk_id: 1} for p in pairs}
    return {f"ndcg@{k}": mean_metric(run, qrels, "ndcg", k)[0], f"recall@{k}": mean_metric(run, qrels, "recall", k)[0]}


def run_evaluate_stage(config: DomainConfig, run: RunDir, show_progress: bool = True) -> dict:
    from embedder import load_embedder

    run.require("filter", "train")
    pool = load_pool(run)
    pairs = [p for p in load_pairs(run, run.filtered) if p.split == "heldout"]
    metric = f"ndcg@{config.eval_k}"
    rows: list[dict] = []
    if not pairs:
        summary = {"heldout_queries": 0, "rows": [], "best": None,
                   "notes": ["no held-out queries survived (raise heldout_fraction or max_chunks)"]}
        write_json(run.path("evaluation.json"), summary)
        run.mark_done("evaluate", summary)
        return summary
    targets: list[tuple[str, int, Path | None]] = [("base", 0, None)]
    targets += [(p.name, int(p.name.split("-")[1]), p) for p in checkpoint_dirs(run)]
    for name, step, path in tqdm(targets, desc="evaluate", unit="model", disable=not show_progress):
        embedder = load_embedder(config.base, adapter=path, quantization=config.quantization)
        rows.append({"name": name, "step": step, "path": str(path.resolve()) if path else None,
                     **{k: round(v, 4) for k, v in score_embedder(embedder, pairs, pool.chunks, config.eval_k).items()}})
        del embedder
        gc.collect()
    best = max(rows[1:] or rows, key=lambda r: (r[metric], r["step"]))
    base = rows[0]
    summary = {
        "heldout_queries": len(pairs),
        "pool_chunks": len(pool.chunks),
        "metric": metric,
        "rows": rows,
        "best": best,
        "gain": round(best[metric] - base[metric], 4),
    }
    if config.eval_suite:
        summary["suite"] = suite_scores(config, [base, best], show_progress)
    write_json(run.path("evaluation.json"), summary)
    run.mark_done("evaluate", {k: summary[k] for k in ("heldout_queries", "best", "gain")})
    return summary


def suite_scores(config: DomainConfig, rows: list[dict], show_progress: bool) -> dict:
    """The base and the best checkpoint on an ``eval/`` suite (Linq's streamlined evaluation);
    results are also saved beside the checkpoint by ``eval``."""
    from eval import ScoreConfig, score

    out: dict = {"name": config.eval_suite}
    for row in rows:
        record = score(ScoreConfig(embedder=config.base, adapter=Path(row["path"]) if row["path"] else None,
                                   suite=config.eval_suite, show_progress=show_progress))
        out[row["name"]] = {"retrieval": record.mean("retrieval"), "all": record.mean("all"),
                            "tasks": {t.task: t.main_score for t in record.tasks}}
    return out
