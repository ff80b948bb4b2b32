"""Is an adapter's gain on real queries more than noise? Paired bootstrap over queries.

    python bench/finetune_significance.py --dataset scifact --adapter runs/finetune-scifact/checkpoints/step-000025 ...

For each adapter: nDCG@10 of the base and the adapter on the dataset's judged test queries (the
same dense scoring as ``bench/finetune_beir.py``: whole documents, 256 tokens), the mean
difference, its standard error and a 95 % paired-bootstrap interval (10,000 resamples of the
queries, seed 0). An interval that contains 0 means the queries cannot tell the two apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_beir import dense_run  # sets the offline env first

from corpora import load_beir
from embedder import load_embedder
from eval.metrics import mean_metric
from linqrag.settings import data_dir


def per_query_ndcg(run: dict, qrels: dict) -> dict[str, float]:
    return mean_metric(run, qrels, "ndcg", 10)[1]


def paired_bootstrap(diff: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--adapter", type=Path, action="append", required=True)
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache"))
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    dataset = load_beir(data_dir() / args.dataset)
    qrels = dataset.qrels
    base = per_query_ndcg(dense_run(load_embedder(args.base), dataset, args.cache), qrels)
    qids = sorted(base)
    b = np.array([base[q] for q in qids])
    print(f"{args.dataset}: {len(qids)} queries, base nDCG@10 {b.mean():.4f} (per-query sd {b.std(ddof=1):.3f})")
    print("| adapter | base | adapted | difference | SE | 95% paired bootstrap |")
    print("| --- | --- | --- | --- | --- | --- |")
    for adapter in args.adapter:
        scores = per_query_ndcg(dense_run(load_embedder(args.base, adapter=adapter), dataset, args.cache), qrels)
        a = np.array([scores.get(q, 0.0) for q in qids])
        diff = a - b
        low, high = paired_bootstrap(diff)
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        name = f"{adapter.parent.parent.name}/{adapter.name}"
        print(f"| {name} | {b.mean():.4f} | {a.mean():.4f} | {diff.mean():+.4f} | {se:.4f} | "
              f"[{low:+.4f}, {high:+.4f}] |",
              flush=True)


if __name__ == "__main__":
    main()
