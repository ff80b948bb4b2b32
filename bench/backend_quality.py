"""Does a CPU backend change what retrieval finds? nDCG@10 of torch against each backend, paired.

    python bench/backend_quality.py [--datasets scifact nfcorpus] [--backends onnx-int8] [--split test]

Dense retrieval over whole documents (the scoring of ``bench/finetune_beir.py``: title and text, the
256-token window), MiniLM loaded once per backend; per judged query the nDCG@10 difference
backend - torch, its mean and a 95 % paired-bootstrap interval (10,000 resamples of the queries,
seed 0). The bar for a default: the difference within 0.005 and an interval that holds zero.
Document vectors are cached per embedder signature under ``~/.cache/linqrag/bench-backend``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_beir import dense_run  # sets the offline env first
from finetune_significance import paired_bootstrap, per_query_ndcg

from corpora import load_beir
from embedder import load_embedder
from linqrag.settings import cache_dir, data_dir

BAR = 0.005


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--backends", nargs="+", default=["onnx-int8"])
    parser.add_argument("--split", default="test", help="qrels split (test; dev or train to choose on)")
    args = parser.parse_args()
    cache = cache_dir() / "bench-backend"
    cache.mkdir(parents=True, exist_ok=True)
    models = {name: load_embedder("minilm", backend=name) for name in ("torch", *args.backends)}
    print("| dataset | queries | backend | torch nDCG@10 | backend nDCG@10 | difference | 95 % paired bootstrap | "
          "within the bar |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.datasets:
        folder = data_dir() / name
        if not folder.exists():
            print(f"| {name} | skipped: {folder} is absent | | | | | | |")
            continue
        dataset = load_beir(folder, split=args.split)
        scores = {backend: per_query_ndcg(dense_run(model, dataset, cache), dataset.qrels)
                  for backend, model in models.items()}
        qids = sorted(scores["torch"])
        base = np.array([scores["torch"][q] for q in qids])
        for backend in args.backends:
            other = np.array([scores[backend][q] for q in qids])
            diff = other - base
            low, high = paired_bootstrap(diff)
            holds = abs(diff.mean()) <= BAR and low <= 0 <= high
            print(f"| {name} | {len(qids)} | {backend} | {base.mean():.4f} | {other.mean():.4f} | {diff.mean():+.4f} | "
                  f"[{low:+.4f}, {high:+.4f}] | {'yes' if holds else 'no'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
