"""Embedding throughput: linqrag's MiniLM path vs ``SentenceTransformer.encode`` on the same model,
the same passages and the same batch size, in one process; then the SmolLM2 decoder path.

    python bench/embed.py [--passages 2000] [--batch-size 32] [--repeats 3]

Passages are SciFact abstracts from the shared data folder when present (real text), else
synthetic sentences (said in the output). The last line is ``ratio ours/sentence-transformers: X``.
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


def load_passages(n: int, seed: int = 0) -> tuple[list[str], str]:
    corpus = data_dir() / "scifact" / "corpus.jsonl.gz"
    if corpus.exists():
        with gzip.open(corpus, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        random.Random(seed).shuffle(rows)
        return [f"{r['title']}. {r['text']}" for r in rows[:n]], f"SciFact abstracts ({corpus})"
    rng = random.Random(seed)
    words = ["retrieval", "model", "vector", "query", "passage", "index", "chunk", "token", "embedding", "score",
             "rank", "corpus"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(20, 250))) for _ in range(n)]
    return texts, "synthetic text (shared data absent)"


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    """Best wall time of ``repeats`` runs after one warm-up (the least disturbed by machine noise)."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decoder-passages", type=int, default=200, help="passages for the SmolLM2 run")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    from embedder import load_embedder
    from embedder.sources import minilm_dir

    passages, origin = load_passages(args.passages)
    print(f"{len(passages)} passages from {origin}; batch size {args.batch_size}; torch threads "
          f"{torch.get_num_threads()}")

    ours = load_embedder("minilm", batch_size=args.batch_size)
    theirs = SentenceTransformer(str(minilm_dir()), device="cpu")
    theirs.max_seq_length = ours.max_length
    tokens = sum(min(n, ours.max_length) for n in ours.count_tokens(passages))

    def run_ours():
        return ours.encode_documents(passages)

    def run_theirs():
        return theirs.encode(passages, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True)

    # Interleave the two so drift in machine load hits both alike.
    t_ours, t_theirs = float("inf"), float("inf")
    v_ours = v_theirs = None
    for _ in range(args.repeats):
        t, v_ours = timed(run_ours, 1)
        t_ours = min(t_ours, t)
        t, v_theirs = timed(run_theirs, 1)
        t_theirs = min(t_theirs, t)
    diff = float(np.abs(v_ours - v_theirs).max())

    smol = load_embedder("smollm2", batch_size=8, max_length=512)
    dec_passages = passages[: args.decoder_passages]
    dec_tokens = sum(smol.count_tokens(smol.format_documents(dec_passages)))
    t_dec, _ = timed(lambda: smol.encode_documents(dec_passages), 1)

    print(f"{'path':34s} {'docs/s':>9s} {'tokens/s':>10s}")
    print(f"{'linqrag minilm':34s} {len(passages) / t_ours:9.1f} {tokens / t_ours:10.0f}")
    print(f"{'sentence-transformers minilm':34s} {len(passages) / t_theirs:9.1f} {tokens / t_theirs:10.0f}")
    print(f"{'linqrag smollm2 (decoder, last)':34s} {len(dec_passages) / t_dec:9.1f} {dec_tokens / t_dec:10.0f}")
    print(f"max abs diff ours vs sentence-transformers: {diff:.2e}")
    print(f"ratio ours/sentence-transformers: {t_theirs / t_ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
