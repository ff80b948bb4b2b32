"""A lever measured and not adopted: adapt only the query side, distilling the fused teacher.

The document vectors stay the base's (no re-index), so every step can score its queries against
the whole corpus: the teacher's (BM25 + base, CombSUM of z-scores) softmax over every document is
the soft label, KL to the student's. Training queries come free from the corpus (titles and
sentences). Two students: LoRA on the query encoder (``--student lora``) or a residual linear map
on the base's query vectors (``--student linear``: seconds per epoch, so it can sweep).

``--queries real`` is a diagnostic, not a pipeline: the judged queries of the split (their text,
never their qrels) take the teacher's labels, two folds, each scored by the map trained on the
other. It bounds what the query side can learn from this teacher on the users' own query shape.

    python bench/query_side.py --dataset scifact --split train --student lora --steps 200 \
        --teacher-top-k 32 --teacher-temperature 2
    python bench/query_side.py --dataset nfcorpus --split dev --student linear --epochs 6
    python bench/query_side.py --dataset nfcorpus --split dev --student linear --queries real \
        --epochs 30 --batch-size 100000

Rows are appended to ``runs/query-side-results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_ablation import compare, hybrid  # sets the offline env first
from finetune_beir import bm25_run, doc_texts, doc_vectors, run_from_scores

from linqrag.settings import data_dir


def corpus_queries(dataset, per_doc: int, seed: int) -> tuple[list[str], list[int]]:
    """Titles and sentences of the corpus with the row of the document they come from."""
    from finetune.sources import split_sentences

    rng = random.Random(seed)
    queries, rows = [], []
    for row, doc in enumerate(dataset.corpus):
        if doc.title and len(doc.title.split()) >= 3:
            queries.append(" ".join(doc.title.split()))
            rows.append(row)
        spans = [(a, b) for a, b in split_sentences(doc.text) if 6 <= len(doc.text[a:b].split()) <= 48]
        for a, b in rng.sample(spans, min(per_doc, len(spans))):
            queries.append(" ".join(doc.text[a:b].split()))
            rows.append(row)
    return queries, rows


def teacher_scores(bm25, base_q: np.ndarray, docs: np.ndarray, queries: list[str], top_k: int = 0,
                   block: int = 2048) -> np.ndarray:
    """``(n_queries, n_docs)`` fused teacher scores: z-scored BM25 plus z-scored base cosine; with
    ``top_k`` every document below a query's top k is masked out of its label (-inf)."""
    from finetune.teacher import zscore

    parts = [zscore(bm25.scores(queries[lo:lo + block]))[0] + zscore(base_q[lo:lo + block] @ docs.T)[0]
             for lo in range(0, len(queries), block)]
    fused = np.concatenate(parts).astype(np.float32)
    if top_k:
        kth = -np.partition(-fused, top_k - 1, axis=1)[:, top_k - 1:top_k]
        fused = np.where(fused >= kth, fused, -np.inf).astype(np.float32)
    return fused


def kl_to_teacher(q, doc_t, teacher_rows, temperature: float):
    """KL from the teacher's distribution over every document to the student's (queries ``q``)."""
    import torch.nn.functional as F

    return F.kl_div(F.log_softmax(q @ doc_t.T / temperature, dim=1), teacher_rows, reduction="batchmean")


def residual(x, weight):
    """The linear student: ``normalize(x + x W)`` (W = 0 is the base)."""
    import torch.nn.functional as F

    return F.normalize(x + x @ weight, dim=-1)


def train_linear(base_q: np.ndarray, targets: np.ndarray, docs: np.ndarray, args, on_epoch=None):
    """A :func:`residual` map (W starts at zero: the base) fitted by KL to the teacher's softmax
    over every document; ``on_epoch(epoch, W)`` after each epoch."""
    import torch

    doc_t = torch.from_numpy(docs)
    queries = torch.from_numpy(base_q)
    teacher = torch.softmax(torch.from_numpy(targets) / args.teacher_temperature, dim=1)
    weight = torch.zeros(docs.shape[1], docs.shape[1], requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=args.linear_lr)
    for epoch in range(1, args.epochs + 1):
        for members in torch.randperm(len(queries)).split(args.batch_size):
            loss = kl_to_teacher(residual(queries[members], weight), doc_t, teacher[members], args.temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if on_epoch:
            on_epoch(epoch, weight.detach())
    return weight.detach()


def apply_linear(vectors: np.ndarray, weight) -> np.ndarray:
    import torch

    return residual(torch.from_numpy(vectors), weight).numpy()


def train_lora(embedder, queries: list[str], targets: np.ndarray, docs: np.ndarray, args, on_step=None) -> None:
    """LoRA on the query encoder, KL to the teacher over the whole corpus; ``on_step(step)`` at each
    ``--eval-every``."""
    import torch

    from finetune.lora import add_lora

    embedder.model = add_lora(embedder.model, 16, 32, 0.05, False, False)
    params = [p for p in embedder.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr)
    doc_t = torch.from_numpy(docs)
    teacher = torch.softmax(torch.from_numpy(targets) / args.teacher_temperature, dim=1)
    ids = embedder.query_ids(queries)
    order = np.random.default_rng(args.seed).permutation(len(queries))
    for step in range(1, args.steps + 1):
        embedder.model.train()
        lo = ((step - 1) * args.batch_size) % len(order)
        members = order[lo:lo + args.batch_size]
        q = embedder.forward(embedder.pad([ids[i] for i in members]))
        loss = kl_to_teacher(q, doc_t, teacher[members], args.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step and (step % args.eval_every == 0 or step == args.steps):
            embedder.model.eval()
            on_step(step)


def main(argv=None) -> int:
    import torch

    from corpora import load_beir
    from embedder import load_embedder
    from finetune.lexical import PoolBM25

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="scifact")
    p.add_argument("--split", default="train", help="judged queries to score (train/dev; never test here)")
    p.add_argument("--student", choices=("lora", "linear"), default="linear")
    p.add_argument("--queries", choices=("corpus", "real"), default="corpus",
                   help="corpus: titles and sentences; real: the split's query texts, 2 folds (a diagnostic)")
    p.add_argument("--per-doc", type=int, default=2, help="sentences drawn per document")
    p.add_argument("--teacher-temperature", type=float, default=1.0)
    p.add_argument("--teacher-top-k", type=int, default=0, help="label only the teacher's top k (0: every document)")
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=200, help="lora: optimizer steps")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--epochs", type=int, default=10, help="linear: epochs (scored every 2)")
    p.add_argument("--batch-size", type=int, help="default: 256 (linear), 64 (lora)")
    p.add_argument("--lr", type=float, default=2e-4, help="lora learning rate")
    p.add_argument("--linear-lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", type=Path, default=Path("runs/cache"))
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    if args.split == "test":
        p.error("this bench chooses settings; score the test split only with the final command")
    if args.queries == "real" and args.student != "linear":
        p.error("--queries real is the linear diagnostic")
    args.batch_size = args.batch_size or (256 if args.student == "linear" else 64)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    dataset = load_beir(data_dir() / args.dataset, split=args.split)
    embedder = load_embedder("minilm")
    docs = doc_vectors(embedder, dataset, args.cache)
    ids, texts = doc_texts(dataset)
    real = dataset.judged_queries
    real_q = embedder.encode_queries(list(real.values()))
    bm25 = PoolBM25(texts)
    lexical = bm25_run(dataset)
    base_run = run_from_scores(real, real_q @ docs.T, ids)
    results = []

    def record(label: str, vectors: np.ndarray) -> None:
        run = run_from_scores(real, vectors @ docs.T, ids)
        row = {"at": label, "dense": compare(base_run, run, dataset.qrels),
               "hybrid": compare(hybrid(base_run, lexical), hybrid(run, lexical), dataset.qrels)}
        results.append(row)
        d, h = row["dense"], row["hybrid"]
        print(f"{label}: dense {d['base_ndcg']:.4f} -> {d['adapted_ndcg']:.4f} ({d['diff']:+.4f} "
              f"[{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]) | hybrid {h['base_ndcg']:.4f} -> {h['adapted_ndcg']:.4f} "
              f"({h['diff']:+.4f} [{h['ci'][0]:+.4f}, {h['ci'][1]:+.4f}])", flush=True)

    if args.queries == "real":
        targets = teacher_scores(bm25, real_q, docs, list(real.values()), args.teacher_top_k)
        fold = np.random.default_rng(args.seed).permutation(len(real)) % 2
        out = np.zeros_like(real_q)
        for f in (0, 1):
            train, held = fold != f, fold == f
            out[held] = apply_linear(real_q[held], train_linear(real_q[train], targets[train], docs, args))
        record(f"2-fold, {args.epochs} epochs", out)
        n_train = len(real)
    else:
        queries, _ = corpus_queries(dataset, args.per_doc, args.seed)
        base_q = embedder.encode_queries(queries, show_progress=True)
        targets = teacher_scores(bm25, base_q, docs, queries, args.teacher_top_k)
        n_train = len(queries)
        if args.student == "linear":
            def every_other(epoch, weight):
                if epoch % 2 == 0:
                    record(f"epoch {epoch}", apply_linear(real_q, weight))

            train_linear(base_q, targets, docs, args, every_other)
        else:
            train_lora(embedder, queries, targets, docs, args,
                       lambda step: record(f"step {step}", embedder.encode_queries(list(real.values()))))
    Path("runs").mkdir(exist_ok=True)
    with open("runs/query-side-results.jsonl", "a") as fh:
        fh.write(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "training_queries": n_train,
                             "results": results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
