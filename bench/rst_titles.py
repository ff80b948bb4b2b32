"""What reading reStructuredText titles changes on retrieval: the 703 PEPs as ``.rst`` files against the
same PEPs loaded from their JSONL with real titles.

Three folders of the same PEPs, written to the cache (never into the project):

- ``jsonl``: ``peps.jsonl`` (each PEP's real title);
- ``rst-published``: ``pep-NNNN.rst`` as python/peps publishes them, the ``PEP:`` / ``Title:`` header
  fields above the body;
- ``rst-body``: ``pep-NNNN.rst`` holding the body alone (its first heading is ``Abstract``, which
  names no document: the title stays the file name).

Each is loaded with the current loader (``new``); the ``.rst`` folders also as the loader read them
before titles were read from reST (``old``: the file name as every title). Chunks are cut as a build
cuts them (MiniLM's tokenizer) and searched with BM25 over title + text, as the index does; with
``--dense`` also with MiniLM (slow: every chunk embedded). Queries: every answerable PEP question of
the answer bench (its ``source`` is the relevant PEP); scores per document (a PEP's best chunk):
recall@5 and MRR@10, with a paired bootstrap interval of each variant against ``jsonl``.

    python bench/rst_titles.py            # BM25, about 2 minutes
    python bench/rst_titles.py --dense    # and MiniLM dense (about 20 minutes a variant on 2 cores)
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linqrag.settings import apply_offline_env, cache_dir, data_dir  # noqa: E402 (after the path)

apply_offline_env()

from answers_tune import bench  # noqa: E402 (bench/answers.py, loaded where it cannot hide the answers package)
from finetune_significance import paired_bootstrap  # noqa: E402


def write_variants(root: Path) -> dict[str, Path]:
    with gzip.open(data_dir() / "python_peps" / "peps.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    folders = {name: root / name for name in ("jsonl", "rst-published", "rst-body")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    (folders["jsonl"] / "peps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for row in rows:
        number = int(row["_id"].split("-")[1])
        header = (f"PEP: {number}\nTitle: {row['title']}\nStatus: {row.get('status', '')}\n"
                  f"Type: {row.get('type', '')}\nCreated: {row.get('created', '')}\n\n")
        (folders["rst-published"] / f"{row['_id']}.rst").write_text(header + row["text"], encoding="utf-8")
        (folders["rst-body"] / f"{row['_id']}.rst").write_text(row["text"], encoding="utf-8")
    return folders


def doc_of(chunk) -> str:
    return chunk.doc_id.rsplit("#", 1)[-1].removesuffix(".rst")


def per_query(ranked_docs: list[list[str]], relevant: list[str]) -> tuple[np.ndarray, np.ndarray]:
    recall, mrr = [], []
    for docs, want in zip(ranked_docs, relevant, strict=True):
        recall.append(float(want in docs[:5]))
        mrr.append(1.0 / (docs.index(want) + 1) if want in docs[:10] else 0.0)
    return np.array(recall), np.array(mrr)


def ranked(scores_per_query, chunks, depth: int = 50) -> list[list[str]]:
    out = []
    for scores in scores_per_query:
        docs: list[str] = []
        for i in np.argsort(-scores)[:depth]:
            doc = doc_of(chunks[i])
            if doc not in docs:
                docs.append(doc)
        out.append(docs)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dense", action="store_true", help="also MiniLM dense retrieval (embeds every chunk)")
    args = p.parse_args(argv)
    if not (data_dir() / "python_peps" / "peps.jsonl.gz").exists():
        print(f"skip: python_peps not found under {data_dir()} (set LINQRAG_DATA)")
        return 0
    from corpora import load_corpus
    from embedder import load_embedder
    from indexing.bm25 import BM25Index
    from indexing.chunking import chunk_documents, default_chunk_config, token_counter

    questions = [q for q in bench.load_questions() if q.corpus == "python_peps" and q.answerable]
    relevant = [q.source for q in questions]
    embedder = load_embedder("minilm")
    config, tokenize = default_chunk_config(embedder.max_length), token_counter(embedder.tokenizer)
    folders = write_variants(cache_dir() / "bench-rst-titles")
    results = {}
    for name, folder in folders.items():
        documents = load_corpus(folder).documents
        for reader in (("new", "old") if name != "jsonl" else ("new",)):
            docs = documents if reader == "new" else [replace(d, title=Path(d.source).stem) for d in documents]
            chunks = chunk_documents(docs, config, tokenize)
            titled = sum(d.title != Path(d.source).stem for d in docs)
            bm25 = BM25Index.build([c.chunk_id for c in chunks], [c.indexed_text for c in chunks])
            runs = {"bm25": ranked([bm25.scores(q.question) for q in questions], chunks)}
            if args.dense:
                vectors = embedder.encode_documents([c.indexed_text for c in chunks], show_progress=True)
                queries = embedder.encode_queries([q.question for q in questions])
                runs["dense"] = ranked(queries @ vectors.T, chunks)
            for kind, docs_ranked in runs.items():
                results[(name, reader, kind)] = per_query(docs_ranked, relevant)
            print(f"{name:14} {reader}: {len(docs)} documents, {titled} with a title other than the file name, "
                  f"{len(chunks)} chunks", flush=True)
    print(f"\n{len(questions)} answerable PEP questions (blind and tuned sets); per document, a PEP's best chunk\n")
    print("| folder | titles read | retriever | recall@5 | MRR@10 | recall@5 vs jsonl (95 % CI) |")
    print("|---|---|---|---|---|---|")
    for (name, reader, kind), (recall, mrr) in results.items():
        base = results[("jsonl", "new", kind)][0]
        low, high = paired_bootstrap(recall - base)
        vs = "-" if name == "jsonl" else f"{(recall - base).mean():+.3f} [{low:+.3f}, {high:+.3f}]"
        print(f"| {name} | {reader} | {kind} | {recall.mean():.3f} | {mrr.mean():.3f} | {vs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
