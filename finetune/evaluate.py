"""Stage 7: score the base and every checkpoint on held-out queries of every source, then decide.

Held-out queries come from chunks no training example saw (whole held-out documents), from each
pair source (generated, title, cloze); each is searched over the entire pool, its positive seen
as it trained (a title pair's body, a cloze pair's chunk minus its sentence), and scored by
nDCG@k and recall@k at the configured cutoff (``eval_k``; one relevant
chunk). ``finetune.selection`` picks the best checkpoint on
one half of the queries and tests it on the other (paired bootstrap), and the out-of-domain
guard (STS-B sentence pairs from the data folder, dev split) checks it did not unlearn general
similarity; the run recommends the base when either fails. Checkpoints are loaded through
``embedder.load_embedder`` exactly as the app and indexes load them.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from eval.metrics import mean_metric
from finetune.config import DomainConfig
from finetune.records import SyntheticPair
from finetune.rundir import RunDir
from finetune.selection import Verdict, best_checkpoint, decide, macro_mean, simultaneous_intervals
from finetune.teacher import encode_by_instruction
from indexing.records import Chunk
from linqrag.files import write_json_atomic

log = logging.getLogger(__name__)

DEPTH = 100
#: STS-B split the guard samples: dev, so no test pair is ever looked at by a run.
GUARD_FILE = "sts-dev.csv"


def score_embedder(embedder, pairs: Sequence[SyntheticPair], chunks: Sequence[Chunk], k: int = 10) -> dict:
    """Per-query nDCG@k and recall@k (``eval.metrics``) of ``embedder`` for ``pairs`` over ``chunks``,
    each positive scored as its training view."""
    docs = embedder.encode_documents([c.indexed_text for c in chunks])
    queries = encode_by_instruction(embedder, [p.query for p in pairs], [p.instruction for p in pairs])
    scores = queries @ docs.T
    column = {c.chunk_id: i for i, c in enumerate(chunks)}
    views = [i for i, p in enumerate(pairs) if p.positive_text]
    if views:
        view_vectors = embedder.encode_documents([pairs[i].positive_text for i in views])
        scores[views, [column[pairs[i].chunk_id] for i in views]] = (queries[views] * view_vectors).sum(axis=1)
    ids = [c.chunk_id for c in chunks]
    run = {p.pair_id: {ids[j]: float(row[j]) for j in np.argsort(-row, kind="stable")[:DEPTH]}
           for p, row in zip(pairs, scores, strict=True)}
    qrels = {p.pair_id: {p.chunk_id: 1} for p in pairs}
    return {name: np.array([per_query[p.pair_id] for p in pairs])
            for name, per_query in (("ndcg", mean_metric(run, qrels, "ndcg", k)[1]),
                                    ("recall", mean_metric(run, qrels, "recall", k)[1]))}


def guard_pairs(n: int, seed: int):
    """A fixed sample of STS-B dev pairs, or None (with the reason) when the data is not here."""
    from eval.localdata import read_sts_benchmark
    from linqrag.settings import data_dir

    path = data_dir() / "stsbenchmark" / GUARD_FILE
    if n <= 0:
        return None, "guard off (guard_pairs = 0)"
    if not path.exists():
        return None, f"guard skipped: {path} not found (set LINQRAG_DATA to the folder holding stsbenchmark/)"
    pairs = read_sts_benchmark(path)
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(pairs), size=min(n, len(pairs)), replace=False).tolist())
    return pairs.select(picked), f"STS-B dev, {len(picked)} pairs"


def guard_spearman(embedder, sts) -> float:
    from scipy.stats import spearmanr

    from eval.localdata import STS_INSTRUCTION

    a = embedder.encode_queries(sts.sentence1, instruction=STS_INSTRUCTION)
    b = embedder.encode_queries(sts.sentence2, instruction=STS_INSTRUCTION)
    return float(spearmanr((a * b).sum(axis=1), sts.scores).statistic)


def _row(name: str, step: int, path: Path | None, scores: dict, sources: list[str], clusters: np.ndarray,
         k: int) -> dict:
    row = {"name": name, "step": step, "path": str(path.resolve()) if path else None,
           f"ndcg@{k}": round(macro_mean(scores["ndcg"], sources, clusters), 4),
           f"recall@{k}": round(macro_mean(scores["recall"], sources, clusters), 4)}
    for source in sorted(set(sources)):  # weighted as the overall mean is: each held-out chunk alike
        mask = np.asarray(sources) == source
        row[f"ndcg@{k}:{source}"] = round(macro_mean(scores["ndcg"][mask], [source] * int(mask.sum()),
                                                     clusters[mask]), 4)
    return row


def run_evaluate_stage(config: DomainConfig, run: RunDir, show_progress: bool = True) -> dict:
    from embedder import load_embedder

    run.require("filter", "train")
    pool = run.pool()
    pairs = [p for p in run.pairs(run.filtered) if p.split == "heldout"]
    k = config.eval_k
    metric = f"ndcg@{k}"
    if not pairs:
        summary = {"heldout_queries": 0, "rows": [], "best": None, "recommended": None,
                   "notes": ["no held-out queries survived (raise heldout_fraction or max_chunks)"]}
        write_json_atomic(run.path("evaluation.json"), summary)
        run.mark_done("evaluate", summary)
        return summary
    sources = [p.source for p in pairs]
    clusters = np.array([f"{p.source}:{p.chunk_id}" for p in pairs])  # queries of one chunk move together
    sts, guard_note = guard_pairs(config.guard_pairs, config.seed)
    targets: list[tuple[str, int, Path | None]] = [("base", 0, None)]
    targets += [(p.name, int(p.name.split("-")[1]), p) for p in run.checkpoint_dirs()]
    rows, per_query, guard = [], {}, {}
    for name, step, path in tqdm(targets, desc="evaluate", unit="model", disable=not show_progress):
        embedder = load_embedder(config.base, adapter=path, quantization=config.quantization, backend="torch")
        scores = score_embedder(embedder, pairs, pool.chunks, k)
        per_query[name] = scores["ndcg"]
        rows.append(_row(name, step, path, scores, sources, clusters, k))
        if sts is not None and name == "base":
            guard["base"] = guard_spearman(embedder, sts)
        del embedder
        gc.collect()
    best, verdict = _choose(config, rows, per_query, sources, clusters, sts, guard)
    base = rows[0]
    summary = {
        "heldout_queries": len(pairs),
        "heldout_by_source": {s: sources.count(s) for s in sorted(set(sources))},
        "heldout_chunks": len({p.chunk_id for p in pairs}),
        "pool_chunks": len(pool.chunks),
        "metric": metric,
        "rows": rows,
        "best": best,
        "gain": round(verdict.gain, 4),
        "guard": {"data": guard_note, **{name: round(v, 4) for name, v in guard.items()}},
        "verdict": verdict.to_json(),
        "recommended": best["path"] if verdict.recommended != "base" else None,
    }
    if config.eval_suite:
        summary["suite"] = suite_scores(config, [base, best], show_progress)
    write_json_atomic(run.path("evaluation.json"), summary)
    run.mark_done("evaluate", {k: summary[k] for k in ("heldout_queries", "best", "gain", "verdict")})
    log.warning("verdict: %s", verdict.reason)
    return summary


def _choose(config: DomainConfig, rows: list[dict], per_query: dict, sources: list[str], clusters: np.ndarray,
            sts, guard: dict) -> tuple[dict, Verdict]:
    """The best checkpoint (or the base row when there is none) and the run's verdict on it; each
    checkpoint row gains its simultaneous interval, and ``guard`` the best one's Spearman."""
    from embedder import load_embedder

    names = [r["name"] for r in rows[1:]]
    if not names:
        return rows[0], Verdict("base", 0.0, (float("nan"), float("nan")), None,
                                "no checkpoint to test: keep the base", 0)
    diffs = np.stack([per_query[n] - per_query["base"] for n in names])
    gains, lows, highs = simultaneous_intervals(diffs, sources, clusters, config.bootstrap_resamples, config.seed)
    for row, gain, low, high in zip(rows[1:], gains, lows, highs, strict=True):
        row["gain"], row["interval"] = round(float(gain), 4), [round(float(low), 4), round(float(high), 4)]
    i = best_checkpoint(names, gains)
    best = rows[1 + i]
    guard_drop = None
    if sts is not None:
        guard[best["name"]] = guard_spearman(load_embedder(config.base, adapter=best["path"],
                                                           quantization=config.quantization), sts)
        guard_drop = guard["base"] - guard[best["name"]]
    verdict = decide(best["name"], float(gains[i]), (float(lows[i]), float(highs[i])), guard_drop,
                     config.guard_max_drop, len(names))
    return best, verdict


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
