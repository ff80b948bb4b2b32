"""Index build throughput and query latency, with baselines measured in the same process.

    python bench/index.py [--chunks 50000] [--build-docs 600] [--queries 100]

1. Build: ``build_index`` with MiniLM over a synthetic corpus of ``--build-docs`` documents,
   reported as chunks/s against bare ``encode_documents`` on the same chunk texts (the embedder's
   own speed is the ceiling; the ratio is what chunking, Chroma and BM25 cost on top). Then a
   rebuild, which must embed nothing.
2. Latency at scale: ``--chunks`` synthetic chunks (Zipf-distributed words, so BM25 sees a
   realistic term distribution) with RANDOM unit vectors in Chroma, since embedding 50k chunks on
   this CPU would take most of an hour. Dense latency includes encoding the query with MiniLM and
   the HNSW search; p50/p95 for dense, bm25 and hybrid over ``--queries`` queries.
3. bm25s vs rank-bm25 (the reference implementation) on the same tokens, the same chunks and the
   same queries; the last line is ``ratio rank-bm25/bm25s query time: X`` (how many times faster bm25s is).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env  # noqa: E402

apply_offline_env()

from embedder import load_embedder  # noqa: E402
from indexing import build_index, open_index  # noqa: E402
from indexing.bm25 import BM25Index, tokenize  # noqa: E402
from indexing.chunking import chunk_id, default_chunk_config  # noqa: E402
from indexing.manifest import Manifest  # noqa: E402
from indexing.records import Chunk  # noqa: E402
from indexing.store import VectorStore, check_index_dir, index_key, write_chunks_atomic  # noqa: E402

COMMON = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
          "they you were her she there one all we their been has when who will more no if out so said what up its "
          "about into than them can only other new some could time these two may then do first any my now such like").split()


def zipf_vocabulary(size: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    rare = {"".join(rng.choice(letters) for _ in range(rng.randint(4, 10))) for _ in range(size)}
    return COMMON + sorted(rare)


class TextSampler:
    """Words with Zipf(1.1) frequencies: a few very common words and a long tail, as in real text."""

    def __init__(self, vocab_size: int = 30000, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.vocab = zipf_vocabulary(vocab_size, self.rng)
        weights = 1.0 / np.arange(1, len(self.vocab) + 1) ** 1.1
        self.cum = np.cumsum(weights / weights.sum())
        self.np_rng = np.random.default_rng(seed)

    def words(self, n: int) -> list[str]:
        picks = np.searchsorted(self.cum, self.np_rng.random(n))
        return [self.vocab[min(i, len(self.vocab) - 1)] for i in picks]

    def text(self, n_words: int) -> str:
        words = self.words(n_words)
        sentences = [" ".join(words[i : i + 15]).capitalize() + "." for i in range(0, len(words), 15)]
        return " ".join(sentences)


def percentile_ms(times: list[float], q: float) -> float:
    return float(np.percentile(np.array(times) * 1000.0, q))


def bench_build(emb, sampler: TextSampler, n_docs: int, work: Path) -> dict:
    corpus = work / "build-corpus"
    corpus.mkdir()
    for i in range(n_docs):
        (corpus / f"doc{i:05d}.txt").write_text(sampler.text(sampler.rng.randint(80, 400)))
    t0 = time.perf_counter()
    report = build_index(corpus, emb, work / "build-index", show_progress=True)
    build_s = time.perf_counter() - t0
    texts = [c.indexed_text for c in open_index(work / "build-index").chunks.values()]
    t0 = time.perf_counter()
    emb.encode_documents(texts)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = build_index(corpus, emb, work / "build-index", show_progress=False)
    rebuild_s = time.perf_counter() - t0
    return {"docs": n_docs, "chunks": report.total, "build_s": build_s, "encode_s": encode_s,
            "rebuild_s": rebuild_s, "rebuild_summary": again.summary()}


def synthetic_index(emb, sampler: TextSampler, n_chunks: int, work: Path) -> tuple[list[Chunk], Path]:
    """An index of ``n_chunks`` chunks laid out exactly as ``build_index`` writes it, random vectors."""
    index_dir = work / "scale-index"
    check_index_dir(index_dir, create=True)
    key = index_key("synthetic", emb.signature)
    home = index_dir / "indexes" / key
    home.mkdir(parents=True)
    chunks = []
    for i in range(n_chunks):
        text = sampler.text(sampler.rng.randint(60, 180))
        chunks.append(Chunk(chunk_id(f"doc{i // 4}", text, 0), f"doc{i // 4}", text, "", f"doc{i // 4}.txt", 0, len(text)))
    store = VectorStore(index_dir, key, emb.signature)
    rng = np.random.default_rng(0)
    step = 5000
    t0 = time.perf_counter()
    for i in range(0, n_chunks, step):
        vectors = rng.standard_normal((len(chunks[i : i + step]), emb.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.upsert(chunks[i : i + step], vectors)
        print(f"  chroma upsert {min(i + step, n_chunks)}/{n_chunks} ({time.perf_counter() - t0:.0f} s)", flush=True)
    write_chunks_atomic(home / "chunks.jsonl", chunks)
    BM25Index.build([c.chunk_id for c in chunks], [c.indexed_text for c in chunks]).save(home / "bm25")
    files: dict[str, dict] = {}
    for c in chunks:
        files.setdefault(c.doc_id, {"digest": "synthetic", "chunks": []})["chunks"].append(c.chunk_id)
    Manifest(corpus="synthetic", corpus_path="(synthetic)", signature=emb.signature, embedder=emb.name,
             chunk_config=default_chunk_config(emb.max_length).to_json(), files=files,
             chunk_count=len(chunks)).save(home / "manifest.json")
    return chunks, index_dir


def make_queries(chunks: list[Chunk], n: int, seed: int = 1) -> list[str]:
    """A few consecutive words lifted from random chunks: every query has lexical matches."""
    rng = random.Random(seed)
    out = []
    for chunk in rng.sample(chunks, n):
        words = chunk.text.replace(".", "").split()
        start = rng.randrange(max(1, len(words) - 6))
        out.append(" ".join(words[start : start + rng.randint(3, 6)]))
    return out


def bench_latency(index, emb, queries: list[str], k: int = 10) -> dict[str, dict[str, float]]:
    out = {}
    for kind in ("dense", "bm25", "hybrid"):
        retriever = index.retriever(kind, emb)
        retriever.search(queries[0], k)  # warm-up: first HNSW load, first tokenizer call
        times = [retriever.search(q, k).seconds for q in queries]
        out[kind] = {"p50_ms": percentile_ms(times, 50), "p95_ms": percentile_ms(times, 95)}
    return out


def bench_bm25_engines(chunks: list[Chunk], queries: list[str], k: int = 10) -> dict:
    """Same stemmed, stopword-free tokens for both engines, so only the scoring engine differs."""
    from rank_bm25 import BM25Okapi

    tokens = tokenize([c.text for c in chunks], show_progress=False)
    inverse = {i: w for w, i in tokens.vocab.items()}
    corpus_tokens = [[inverse[i] for i in doc] for doc in tokens.ids]
    ours = BM25Index.build([c.chunk_id for c in chunks], [c.text for c in chunks])
    reference = BM25Okapi(corpus_tokens)
    query_tokens = []
    for q in queries:
        qt = tokenize([q], show_progress=False)
        qinv = {i: w for w, i in qt.vocab.items()}
        query_tokens.append([qinv[i] for i in qt.ids[0]])

    t0 = time.perf_counter()
    ours_top = [[cid for cid, _ in ours.search(q, k)] for q in queries]
    bm25s_s = (time.perf_counter() - t0) / len(queries)
    t0 = time.perf_counter()
    ref_top = []
    for qt in query_tokens:
        scores = reference.get_scores(qt)
        ref_top.append([chunks[i].chunk_id for i in np.argsort(-scores)[:k]])
    rank_bm25_s = (time.perf_counter() - t0) / len(queries)
    agree = float(np.mean([a[0] == b[0] for a, b in zip(ours_top, ref_top) if a and b]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ours_top, ref_top)]))
    return {"bm25s_ms": bm25s_s * 1000, "rank_bm25_ms": rank_bm25_s * 1000, "top1_agreement": agree,
            "top10_overlap": overlap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=50000, help="chunks in the latency index (default 50000)")
    parser.add_argument("--build-docs", type=int, default=600, help="documents in the real build (default 600; 0 skips it)")
    parser.add_argument("--queries", type=int, default=100, help="queries timed per retriever (default 100)")
    parser.add_argument("--rank-bm25-queries", type=int, default=30, help="queries for the slow reference engine")
    args = parser.parse_args()

    emb = load_embedder("minilm")
    sampler = TextSampler()
    work = Path(tempfile.mkdtemp(prefix="linqrag-bench-index-"))
    try:
        if args.build_docs:
            print(f"== build: {args.build_docs} synthetic documents, MiniLM on {emb.device}")
            build = bench_build(emb, sampler, args.build_docs, work)
            print(f"build  {build['chunks']} chunks in {build['build_s']:.1f} s: {build['chunks'] / build['build_s']:.1f} chunks/s")
            print(f"encode only (same chunks): {build['chunks'] / build['encode_s']:.1f} chunks/s")
            print(f"ratio build/encode-only throughput: {build['encode_s'] / build['build_s']:.2f}")
            print(f"rebuild: {build['rebuild_s']:.2f} s, {build['rebuild_summary']}")

        print(f"\n== latency: {args.chunks} synthetic chunks, random unit vectors in Chroma (text is synthetic too)")
        chunks, index_dir = synthetic_index(emb, sampler, args.chunks, work)
        index = open_index(index_dir)
        queries = make_queries(chunks, args.queries)
        for kind, t in bench_latency(index, emb, queries).items():
            print(f"{kind:7s} p50 {t['p50_ms']:7.1f} ms   p95 {t['p95_ms']:7.1f} ms")

        print(f"\n== bm25s vs rank-bm25: {args.chunks} chunks, {args.rank_bm25_queries} queries, same tokens")
        engines = bench_bm25_engines(chunks, queries[: args.rank_bm25_queries])
        print(f"bm25s {engines['bm25s_ms']:.2f} ms/query, rank-bm25 {engines['rank_bm25_ms']:.1f} ms/query, "
              f"top-1 agreement {engines['top1_agreement']:.2f}, top-10 overlap {engines['top10_overlap']:.2f}")
        print(f"ratio rank-bm25/bm25s query time: {engines['rank_bm25_ms'] / engines['bm25s_ms']:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
