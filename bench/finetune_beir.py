"""The honest experiment: adapt on a BEIR folder's corpus only, then score its real test queries.

The pipeline (``finetune.domain``) reads only the corpus (``load_corpus`` drops queries and
qrels). Afterwards this script scores, on the folder's judged test queries, the base embedder,
the adapted one (best checkpoint by held-out synthetic nDCG@10, and the last one) and BM25.
Documents are embedded whole, truncated at the embedder's window (as MTEB scores them); BM25
(bm25s, English stemmer and stopwords) reads whole documents. Base document vectors are cached.

    python bench/finetune_beir.py --dataset scifact --max-chunks 500 --steps 100
    python bench/finetune_beir.py --dataset scifact --score-only runs/finetune-scifact

Results are appended to ``runs/finetune-beir-results.jsonl`` and printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()

DEPTH = 100


def doc_texts(dataset) -> tuple[list[str], list[str]]:
    ids = [d.doc_id for d in dataset.corpus]
    texts = [f"{d.title}\n{d.text}" if d.title else d.text for d in dataset.corpus]
    return ids, texts


def doc_vectors(embedder, dataset, cache: Path | None) -> np.ndarray:
    """Whole documents' vectors, cached by embedder signature, token budget and document ids (the
    signature leaves the budget out, and a long document's vector depends on it)."""
    ids, texts = doc_texts(dataset)
    budget = getattr(embedder, "max_length", None)
    suffix = "" if budget is None else f"\x00max_length={budget}"
    key = hashlib.sha256((embedder.signature + "\x00".join(ids) + suffix).encode()).hexdigest()[:16]
    path = cache / f"docs-{dataset.name}-{key}.npy" if cache else None
    if path and path.exists():
        return np.load(path)
    docs = embedder.encode_documents(texts, show_progress=True)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, docs)
    return docs


def first_chunks(chunks: list, first: int) -> list:
    """The first ``first`` chunks of each document, in text order."""
    taken: dict[str, int] = {}
    kept = []
    for chunk in chunks:
        taken[chunk.doc_id] = taken.get(chunk.doc_id, 0) + 1
        if taken[chunk.doc_id] <= first:
            kept.append(chunk)
    return kept


def chunk_vectors(embedder, dataset, cache: Path | None, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Documents cut as the app indexes them (``default_chunk_config`` of the embedder's window,
    title before each chunk), each document's ``first`` chunks (0: all): ``(chunk vectors, index of
    each document's first chunk)``, cached like ``doc_vectors``. A long judgment is then read far
    past its first 256 tokens."""
    from indexing.chunking import chunk_documents, default_chunk_config, token_counter

    ids, _ = doc_texts(dataset)
    config = default_chunk_config(embedder.max_length)
    key = hashlib.sha256((embedder.signature + "\x00".join(ids)
                          + f"\x00chunks={config.chunk_size}/{config.chunk_overlap}/{first}").encode()).hexdigest()[:16]
    path = cache / f"chunks-{dataset.name}-{key}.npz" if cache else None
    if path and path.exists():
        saved = np.load(path)
        return saved["vectors"], saved["starts"]
    chunks = chunk_documents(dataset.corpus, config, token_counter(embedder.tokenizer))
    if first:
        chunks = first_chunks(chunks, first)
    owner = {doc_id: i for i, doc_id in enumerate(ids)}
    order = sorted(range(len(chunks)), key=lambda j: owner[chunks[j].doc_id])  # stable: text order kept
    rows = np.array([owner[chunks[j].doc_id] for j in order])
    missing = sorted(set(range(len(ids))) - set(rows.tolist()))
    if missing:
        raise ValueError(f"{len(missing)} documents gave no chunk (first: {ids[missing[0]]})")
    starts = np.searchsorted(rows, np.arange(len(ids)))
    vectors = embedder.encode_documents([chunks[j].indexed_text for j in order], show_progress=True)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, vectors=vectors, starts=starts)
    return vectors, starts


def chunked_dense_run(embedder, dataset, cache: Path | None, first: int = 0) -> dict:
    """Each document scored by its best chunk (MaxP), the app's retrieval unit."""
    ids, _ = doc_texts(dataset)
    vectors, starts = chunk_vectors(embedder, dataset, cache, first)
    queries = dataset.judged_queries
    scores = np.maximum.reduceat(embedder.encode_queries(list(queries.values())) @ vectors.T, starts, axis=1)
    return run_from_scores(queries, scores, ids)


def run_from_scores(qids, scores: np.ndarray, ids: list[str]) -> dict:
    """``{query id: {doc id: score}}``, the top ``DEPTH`` of each row of a query x document matrix."""
    out = {}
    for qid, row in zip(qids, scores, strict=False):
        top = np.argsort(-row, kind="stable")[:DEPTH]
        out[qid] = {ids[j]: float(row[j]) for j in top}
    return out


def dense_run(embedder, dataset, cache: Path | None) -> dict:
    ids, _ = doc_texts(dataset)
    docs = doc_vectors(embedder, dataset, cache)
    queries = dataset.judged_queries
    return run_from_scores(queries, embedder.encode_queries(list(queries.values())) @ docs.T, ids)


def pipeline_unless_scoring(args: argparse.Namespace, run_dir: Path, **settings) -> tuple[Path, Path, float]:
    """Torch threads as asked, then the pipeline unless ``--score-only``: ``(data folder, LLM cache,
    pipeline seconds)``; both benches share it."""
    import torch

    torch.set_num_threads(args.threads)
    folder, cache = data_dir() / args.dataset, Path("runs/cache")
    t0 = time.perf_counter()
    if not args.score_only:
        run_pipeline(folder, run_dir, args.base, args.threads, args.config, cache, **settings)
    return folder, cache, time.perf_counter() - t0


def run_pipeline(folder: Path, run_dir: Path, base: str, threads: int, config: str | None, cache: Path, **settings):
    """``finetune.domain`` on a BEIR folder (the corpus only), LLM answers shared per dataset; a budget
    (the config's, else the default) sizes the run as the command does."""
    from finetune.domain import plan_run, run_domain_adaptation

    overrides = {"corpus": str(folder), "run_dir": str(run_dir), "base": base, "threads": threads,
                 "generation_cache": str(cache / f"generations-{folder.name}.jsonl"), **settings}
    resolved, plan = plan_run(overrides, config, show=lambda text: print(text, flush=True))
    result = run_domain_adaptation(resolved, plan=plan)
    print(result.summary_line(), flush=True)
    return result


def bm25_run(dataset) -> dict:
    from indexing.bm25 import BM25Index

    ids, texts = doc_texts(dataset)
    index = BM25Index.build(ids, texts)
    return {qid: dict(index.search(text, DEPTH)) for qid, text in dataset.judged_queries.items()}


def score_adaptation(folder: Path, run_dir: Path, base: str, cache: Path, only_best: bool = False) -> dict:
    from corpora import load_beir
    from embedder import load_embedder
    from eval.runs import score_run

    dataset = load_beir(folder)
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    rows = evaluation["rows"]
    best = evaluation["best"]
    last = rows[-1]
    out = {"dataset": dataset.name, "queries": len(dataset.judged_queries), "documents": len(dataset.corpus),
           "run_dir": str(run_dir), "base": base, "heldout_synthetic": {r["name"]: r["ndcg@10"] for r in rows}}
    t0 = time.perf_counter()
    out["bm25"] = score_run(bm25_run(dataset), dataset.qrels)
    out["base_scores"] = score_run(dense_run(load_embedder(base), dataset, cache), dataset.qrels)
    targets = {"best": best} if best["name"] == last["name"] or only_best else {"best": best, "last": last}
    for label, row in targets.items():
        emb = load_embedder(base, adapter=row["path"])
        out[f"adapted_{label}"] = {"checkpoint": row["name"], **score_run(dense_run(emb, dataset, None), dataset.qrels)}
    out["scoring_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="folder name under the data dir (scifact, nfcorpus, ...)")
    p.add_argument("--base", default="minilm")
    p.add_argument("--run-dir", help="default runs/finetune-<dataset>[-<tag>]")
    p.add_argument("--tag", default="", help="suffix of the run dir, for variations")
    p.add_argument("--config", help="DomainConfig JSON/TOML for the pipeline")
    p.add_argument("--max-chunks", type=int)
    p.add_argument("--max-chunks-per-doc", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only-best", action="store_true", help="score only the best checkpoint, not also the last")
    p.add_argument("--score-only", action="store_true", help="skip the pipeline, score an existing run")
    args = p.parse_args(argv)

    run_dir = Path(args.run_dir or f"runs/finetune-{args.dataset}{'-' + args.tag if args.tag else ''}")
    folder, cache, pipeline_seconds = pipeline_unless_scoring(args, run_dir, max_chunks=args.max_chunks,
                                                              max_chunks_per_doc=args.max_chunks_per_doc,
                                                              steps=args.steps)
    out = score_adaptation(folder, run_dir, args.base, cache, args.only_best)
    out["pipeline_seconds"] = round(pipeline_seconds, 1)
    out["stages"] = json.loads((run_dir / "stages.json").read_text())
    with open("runs/finetune-beir-results.jsonl", "a") as fh:
        fh.write(json.dumps(out) + "\n")
    brief = {k: v for k, v in out.items() if k != "stages"}
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
