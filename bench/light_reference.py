"""Reference rows on the light set that ``finetune_ablation.py --light N`` scores: BM25 and any
embedder (MiniLM by default) on the same sampled queries and documents, so a slow base's rows have
something to stand against.

The light set pools every query's judged documents, the BM25 and MiniLM top 10 of the whole
corpus and 100 random documents (``eval.sampling``, seed 42). MiniLM's own top 10 are therefore
all present and its nDCG@10 here equals its whole-corpus score, while another model meets fewer
distractors than in the whole corpus: a comparison with MiniLM on this set leans towards the other
model, never against it.

    python bench/light_reference.py --dataset scifact --split test --light 100
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_beir import bm25_run, dense_run  # sets the offline env first

from corpora import load_beir
from embedder import load_embedder
from eval.metrics import mean_metric
from eval.sampling import RetrievalSampling, subsample_retrieval
from linqrag.settings import data_dir


def scores(run: dict, qrels: dict) -> dict[str, float]:
    return {f"{metric}@10": round(mean_metric(run, qrels, metric)[0], 4) for metric in ("ndcg", "recall")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="train", help="qrels split to score (test once, for final rows)")
    p.add_argument("--light", type=int, required=True, metavar="N", help="sampled judged queries, as in the ablation")
    p.add_argument("--embedder", action="append", help="embedder to score (repeatable; default minilm)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    dataset = load_beir(data_dir() / args.dataset, args.split)
    dataset = subsample_retrieval(dataset, RetrievalSampling(max_queries=args.light), show_progress=True)
    rows = {"bm25": scores(bm25_run(dataset), dataset.qrels)}
    for name in args.embedder or ["minilm"]:
        rows[name] = scores(dense_run(load_embedder(name), dataset, Path("runs/cache")), dataset.qrels)
    out = {"dataset": args.dataset, "split": args.split, "light": args.light,
           "queries": len(dataset.judged_queries), "documents": len(dataset.corpus), "rows": rows}
    Path("runs").mkdir(exist_ok=True)
    with open("runs/light-reference.jsonl", "a") as fh:
        fh.write(json.dumps(out) + "\n")
    print(f"{args.dataset}/{args.split} light {args.light} ({out['queries']} queries, {out['documents']} documents): "
          + " | ".join(f"{name} nDCG@10 {r['ndcg@10']:.4f} recall@10 {r['recall@10']:.4f}" for name, r in rows.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
