"""One lever at a time: run ``finetune.domain`` on a BEIR folder's corpus with a variant config, then
score the base, the best checkpoint and what the run recommends on *real* queries of a chosen split.

Settings are chosen on splits that are not test (SciFact ``train``, NFCorpus ``dev``); the test
split is scored once, for the final rows (``--split test``). Only the corpus enters the pipeline.
Each row: dense nDCG@10 / recall@10 of base and adapted, the paired-bootstrap 95 % interval of the
nDCG@10 difference, and the same for hybrid (RRF of BM25 and the dense model, k=60).

    python bench/finetune_ablation.py --dataset scifact --split train --tag sources --config runs/abl/sources.json
    python bench/finetune_ablation.py --dataset scifact --split test --tag all --score-only

Rows are appended to ``runs/ablation-results.jsonl`` and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_beir import bm25_run, chunked_dense_run, dense_run, pipeline_unless_scoring  # sets the offline env first
from finetune_significance import paired_bootstrap

from corpora import load_beir
from embedder import load_embedder
from eval.metrics import mean_metric
from eval.sampling import RetrievalSampling, subsample_retrieval
from indexing.retrievers import rrf_fuse


def hybrid(dense: dict, lexical: dict, depth: int = 100) -> dict:
    return {qid: dict(rrf_fuse({"dense": list(ranked), "bm25": list(lexical.get(qid, {}))})[:depth])
            for qid, ranked in dense.items()}


def per_query(run: dict, qrels: dict, metric: str = "ndcg", k: int = 10) -> dict[str, float]:
    return mean_metric(run, qrels, metric, k)[1]


def compare(base: dict, adapted: dict, qrels: dict) -> dict:
    b, a = per_query(base, qrels), per_query(adapted, qrels)
    qids = sorted(b)
    diff = np.array([a.get(q, 0.0) - b[q] for q in qids])
    low, high = paired_bootstrap(diff)
    rb, ra = per_query(base, qrels, "recall"), per_query(adapted, qrels, "recall")
    return {"base_ndcg": round(float(np.mean([b[q] for q in qids])), 4),
            "adapted_ndcg": round(float(np.mean([a.get(q, 0.0) for q in qids])), 4),
            "diff": round(float(diff.mean()), 4), "ci": [round(low, 4), round(high, 4)],
            "base_recall": round(float(np.mean([rb[q] for q in qids])), 4),
            "adapted_recall": round(float(np.mean([ra.get(q, 0.0) for q in qids])), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="train", help="qrels split to score (train/dev to choose; test once, at the end)")
    p.add_argument("--tag", required=True, help="name of the variant (run dir runs/abl-<dataset>-<tag>)")
    p.add_argument("--config", help="DomainConfig JSON/TOML of the variant")
    p.add_argument("--base", default="minilm")
    p.add_argument("--backend", default="torch",
                   help="backend that scores base and adapted alike (default torch: exact fp32, comparable "
                        "with earlier rows; auto: what the app would use)")
    p.add_argument("--run-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint", default="recommended", choices=("recommended", "best", "last"),
                   help="which checkpoint to score (recommended falls back to best, and says so)")
    p.add_argument("--score-only", action="store_true")
    p.add_argument("--light", type=int, metavar="N",
                   help="score on a light corpus: N sampled judged queries, their judged documents, BM25 and "
                        "MiniLM top-10 per query and 100 random documents (eval.sampling; seed 42), for bases "
                        "too slow to embed a whole corpus")
    p.add_argument("--max-length", type=int, metavar="TOKENS",
                   help="documents' token budget when scoring (default: the preset's; smollm2 reads 2,048, "
                        "which on long judgments costs 3.5 s a document on two threads)")
    p.add_argument("--doc-chunks", type=int, metavar="N",
                   help="read past the window: cut documents as the app indexes them and score each by the "
                        "best of its first N chunks (MaxP; 0: all), instead of truncating at the window")
    args = p.parse_args(argv)

    run_dir = Path(args.run_dir or f"runs/abl-{args.dataset}-{args.tag}")
    folder, cache, pipeline_seconds = pipeline_unless_scoring(args, run_dir)
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    rows = {r["name"]: r for r in evaluation["rows"]}
    chosen = {"best": evaluation["best"]["path"], "last": evaluation["rows"][-1]["path"],
              "recommended": evaluation.get("recommended")}[args.checkpoint]
    fell_back = args.checkpoint == "recommended" and not chosen
    chosen = chosen or evaluation["best"]["path"]
    dataset = load_beir(folder, args.split)
    dataset.judged_queries  # noqa: B018 (fails early on a split without judged queries)
    if args.light:
        dataset = subsample_retrieval(dataset, RetrievalSampling(max_queries=args.light), show_progress=True)
    lexical = bm25_run(dataset)
    def score(embedder, vector_cache):
        if args.doc_chunks is None:
            return dense_run(embedder, dataset, vector_cache)
        return chunked_dense_run(embedder, dataset, vector_cache, args.doc_chunks)

    base = score(load_embedder(args.base, max_length=args.max_length, backend=args.backend), cache)
    adapted = score(load_embedder(args.base, adapter=chosen, max_length=args.max_length, backend=args.backend),
                    None)
    out = {
        "dataset": args.dataset, "split": args.split, "tag": args.tag, "base": args.base, "run_dir": str(run_dir),
        "checkpoint": Path(chosen).name, "recommended_by_run": evaluation.get("recommended") is not None,
        "scored_best_instead": fell_back, "verdict": evaluation.get("verdict", {}).get("reason"),
        "heldout_gain": evaluation.get("gain"), "queries": len(dataset.judged_queries),
        "documents": len(dataset.corpus), "light": args.light, "max_length": args.max_length,
        "doc_chunks": args.doc_chunks,
        "dense": compare(base, adapted, dataset.qrels),
        "hybrid": compare(hybrid(base, lexical), hybrid(adapted, lexical), dataset.qrels),
        "bm25_ndcg": round(mean_metric(lexical, dataset.qrels)[0], 4),
        "pipeline_seconds": round(pipeline_seconds, 1),
        "stage_seconds": {k: v.get("seconds") for k, v in json.loads((run_dir / "stages.json").read_text()).items()},
        "rows": {n: r.get("ndcg@10") for n, r in rows.items()},
    }
    Path("runs").mkdir(exist_ok=True)
    with open("runs/ablation-results.jsonl", "a") as fh:
        fh.write(json.dumps(out) + "\n")
    d, h = out["dense"], out["hybrid"]
    print(f"{args.dataset}/{args.split}{f' light {args.light}' if args.light else ''}"
          f"{'' if args.doc_chunks is None else f' doc-chunks {args.doc_chunks}'} {args.tag} "
          f"[{out['checkpoint']}{' (not recommended by the run)' if fell_back else ''}]: "
          f"dense {d['base_ndcg']:.4f} -> {d['adapted_ndcg']:.4f} ({d['diff']:+.4f}, 95% [{d['ci'][0]:+.4f}, "
          f"{d['ci'][1]:+.4f}]) "
          f"recall@10 {d['base_recall']:.4f} -> {d['adapted_recall']:.4f} | hybrid {h['base_ndcg']:.4f} -> "
          f"{h['adapted_ndcg']:.4f} ({h['diff']:+.4f}, [{h['ci'][0]:+.4f}, {h['ci'][1]:+.4f}]) | bm25 "
          f"{out['bm25_ndcg']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
