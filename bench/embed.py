"""Embedding throughput of each CPU backend on the same real chunks, in one process.

    python bench/embed.py [--chunks 2000] [--batch-size 32] [--repeats 2] [--threads N]

The chunks are the indexer's own chunks of the 703 PEPs (../shared/data/python_peps, chunked with
MiniLM's tokenizer and the default chunk config), a random 2,000 of them; without the data, SciFact
abstracts, else synthetic text (said in the output). Each backend (``torch``, ``onnx``,
``onnx-int8``, ``openvino-bf16`` where OpenVINO is installed, and sentence-transformers' ``encode`` on
the same model as an outside reference) encodes all of them ``--repeats`` times, interleaved so drift
in machine load hits every backend alike; the best time counts. Printed per backend: chunks/s,
tokens/s, the lowest and mean cosine of its vectors to torch's, and the line
``ratio backend/torch chunks per second: X``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()


def pep_chunks(n: int, tokenizer, seed: int = 0) -> list[str] | None:
    """``n`` random chunks of the PEPs as the indexer makes them (title line included)."""
    from corpora import Document
    from indexing.chunking import chunk_documents, default_chunk_config, token_counter

    source = data_dir() / "python_peps" / "peps.jsonl.gz"
    if not source.exists():
        return None
    with gzip.open(source, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    docs = [Document(doc_id=str(r.get("_id") or r.get("id")), text=r["text"], title=r.get("title", "")) for r in rows]
    chunks = chunk_documents(docs, default_chunk_config(256), token_counter(tokenizer))
    random.Random(seed).shuffle(chunks)
    return [c.indexed_text for c in chunks[:n]]


def other_texts(n: int, seed: int = 0) -> tuple[list[str], str]:
    corpus = data_dir() / "scifact" / "corpus.jsonl.gz"
    if corpus.exists():
        with gzip.open(corpus, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        random.Random(seed).shuffle(rows)
        return [f"{r['title']}. {r['text']}" for r in rows[:n]], f"SciFact abstracts ({corpus})"
    rng = random.Random(seed)
    words = "retrieval model vector query passage index chunk token embedding score rank corpus".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(20, 250))) for _ in range(n)], "synthetic text"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch and ONNX Runtime threads (default: torch's)")
    parser.add_argument("--no-sentence-transformers", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from embedder import load_embedder
    from embedder.onnx import cpu_default
    from embedder.openvino import openvino_available
    from embedder.sources import minilm_dir

    names = ["torch", "onnx", "onnx-int8"] + (["openvino-bf16"] if openvino_available() else [])
    models = {name: load_embedder("minilm", batch_size=args.batch_size, backend=name) for name in names}
    reference = models["torch"]
    texts = pep_chunks(args.chunks, reference.tokenizer)
    origin = "PEP chunks (the indexer's chunking of ../shared/data/python_peps)"
    if texts is None:
        texts, origin = other_texts(args.chunks)
    tokens = sum(reference.count_tokens(reference.format_documents(texts)))
    print(f"{len(texts)} {origin}; {tokens / len(texts):.0f} tokens each on average; batch size {args.batch_size}; "
          f"torch threads {torch.get_num_threads()}; torch {torch.__version__}; auto here: {cpu_default()}",
          flush=True)

    runs = {name: (lambda m=model: m.encode_documents(texts)) for name, model in models.items()}
    if not args.no_sentence_transformers:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(minilm_dir()), device="cpu")
        st.max_seq_length = reference.max_length
        runs["sentence-transformers"] = lambda: st.encode(texts, batch_size=args.batch_size,
                                                          normalize_embeddings=True, convert_to_numpy=True)
    for model in models.values():  # warm-up: first-call allocations, thread pools
        model.encode_documents(texts[:64])
    best = dict.fromkeys(runs, float("inf"))
    vectors: dict[str, np.ndarray] = {}
    for repeat in range(args.repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            vectors[name] = run()
            best[name] = min(best[name], time.perf_counter() - started)
            print(f"  repeat {repeat + 1}: {name} {len(texts) / best[name]:.1f} chunks/s", flush=True)

    print(f"\n{'backend':24s} {'chunks/s':>9s} {'tokens/s':>9s} {'min cos':>10s} {'mean cos':>10s}")
    for name in runs:
        cosine = (vectors[name] * vectors["torch"]).sum(axis=1)
        print(f"{name:24s} {len(texts) / best[name]:9.1f} {tokens / best[name]:9.0f} {cosine.min():10.6f} "
              f"{cosine.mean():10.6f}")
    for name in runs:
        if name != "torch":
            print(f"ratio {name}/torch chunks per second: {best['torch'] / best[name]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
