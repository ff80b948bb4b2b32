"""Query latency on real chunks, index build throughput, and bm25s vs rank-bm25; baselines in the same process.

    python bench/index.py [--sizes 10k 50k] [--queries 200]           # query latency on real chunks
    python bench/index.py --synthetic [--chunks 50000] [--build-docs 600] [--queries 100]

Real (the default): indexes of real chunks built with ``build_index`` and MiniLM, cached under
``~/.cache/linqrag/bench-index/`` (the 50k build embeds for about an hour on one core; a later run
re-reads it in seconds):

- ``10k``: SciFact (5,183 abstracts, 9,911 chunks), queried with its judged test queries;
- ``50k``: SciFact + NFCorpus + the PEPs whole, then AILA case documents until 50,000 chunks;
  queried with SciFact and NFCorpus test queries interleaved ("short") and with AILA's 50 case
  descriptions ("long": ~530 words, cut to the 256-token window).

Every search includes encoding the query. Each query goes through three paths in turn: ``old``
(the code before the latency work, kept callable here: torch's default threads, one per CPU, and a
Chroma ``count()`` per search), ``old-1t`` (the same at one thread) and ``new``; p50/p95 per
retriever, the ratio old/new at p95, the split of a hybrid search, a check that old and new return
the same hits in the same order, and the load average before and after.

Synthetic (``--synthetic``, the earlier benchmark):

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
import itertools
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, data_dir

apply_offline_env()

from embedder import load_embedder
from indexing import build_index, open_index
from indexing.bm25 import BM25Index, tokenize
from indexing.chunking import chunk_id, default_chunk_config
from indexing.manifest import Manifest
from indexing.records import Chunk
from indexing.retrieval import QUERY_THREADS, query_threads
from indexing.retrievers import BM25Retriever, DenseRetriever, HybridRetriever
from indexing.store import VectorStore, check_index_dir, index_key
from linqrag.files import write_jsonl_atomic

COMMON = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there one all we their been has when who will more no if out so said what "
    "up its about into than them can only other new some could time these two may then do first any my "
    "now such like"
).split()


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
        chunks.append(Chunk(chunk_id(f"doc{i // 4}", text, 0), f"doc{i // 4}", text, "", f"doc{i // 4}.txt", 0,
                            len(text)))
    store = VectorStore(index_dir, key, emb.signature)
    rng = np.random.default_rng(0)
    step = 5000
    t0 = time.perf_counter()
    for i in range(0, n_chunks, step):
        vectors = rng.standard_normal((len(chunks[i : i + step]), emb.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.upsert(chunks[i : i + step], vectors)
        print(f"  chroma upsert {min(i + step, n_chunks)}/{n_chunks} ({time.perf_counter() - t0:.0f} s)", flush=True)
    write_jsonl_atomic(home / "chunks.jsonl", chunks)
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
        times = []
        for q in queries:
            index.forget_query_vectors()  # hybrid must not reuse dense's vector: every query is new
            times.append(retriever.search(q, k).seconds)
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
    agree = float(np.mean([a[0] == b[0] for a, b in zip(ours_top, ref_top, strict=False) if a and b]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ours_top, ref_top, strict=False)]))
    return {"bm25s_ms": bm25s_s * 1000, "rank_bm25_ms": rank_bm25_s * 1000, "top1_agreement": agree,
            "top10_overlap": overlap}


# ---- query latency on real chunks ------------------------------------------------------------

#: BEIR folders and document files the real indexes draw on, in the order the 50k mix takes them.
MIX = (("scifact", "scifact"), ("nfcorpus", "nfcorpus"), ("python_peps", "python_peps/peps.jsonl.gz"),
       ("aila-casedocs", "aila-casedocs"))
#: Test-query sets per index: short queries (titles, claims) and AILA's long case descriptions.
SHORT_SETS = {"10k": ("scifact",), "50k": ("scifact", "nfcorpus")}
LONG_SETS = {"10k": (), "50k": ("aila-casedocs",)}


def bench_cache() -> Path:
    """Built indexes live here between runs (never in the repository)."""
    from linqrag.settings import cache_dir

    path = cache_dir() / "bench-index"
    path.mkdir(parents=True, exist_ok=True)
    return path


def source_documents(name: str, where: str) -> list:
    from corpora import iter_beir_corpus, load_beir

    path = data_dir() / where
    if path.is_dir():
        return load_beir(path).corpus
    return list(iter_beir_corpus(path))


def write_jsonl_gz(path: Path, docs) -> None:
    import gzip
    import json

    partial = path.with_name(path.name + ".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}, ensure_ascii=False) + "\n")
    partial.replace(path)


def mixed_corpus(emb, target: int, folder: Path) -> Path:
    """A folder of real documents that chunks to about ``target`` chunks: SciFact, NFCorpus and the
    PEPs whole, then AILA case documents in file order until ``target`` is reached. Written once
    (``mix.json`` records what went in); the index build re-reads it as a folder of ``.jsonl.gz``."""
    import json

    from indexing.chunking import chunk_documents, token_counter

    record = folder / "mix.json"
    if record.exists() and json.loads(record.read_text()).get("target") == target:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    config, tokenize = default_chunk_config(emb.max_length), token_counter(emb.tokenizer)
    total, mix = 0, {}
    for name, where in MIX:
        docs, kept = source_documents(name, where), []
        t0 = time.perf_counter()
        for doc in docs:
            if total >= target:
                break
            total += len(chunk_documents([doc], config, tokenize))
            kept.append(doc)
        write_jsonl_gz(folder / f"{name}.jsonl.gz", kept)
        mix[name] = {"documents": len(kept), "of": len(docs)}
        print(f"  mix: {name} {len(kept)}/{len(docs)} documents, {total} chunks so far "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    record.write_text(json.dumps({"target": target, "chunks": total, "sources": mix}, indent=1))
    return folder


def real_index(emb, size: str) -> Path:
    """``10k``: the SciFact BEIR folder (9,911 chunks); ``50k``: :func:`mixed_corpus`. Built by
    ``build_index`` into the bench cache; a second run finds every chunk embedded and only re-reads."""
    cache = bench_cache()
    if size == "10k":
        corpus, name = data_dir() / "scifact", "scifact"
    elif size == "50k":
        corpus, name = mixed_corpus(emb, 50_000, cache / "corpus-50k"), "mix-50k"
    else:
        raise SystemExit(f"unknown size {size!r}; choose 10k or 50k")
    index_dir = cache / name
    t0 = time.perf_counter()
    report = build_index(corpus, emb, index_dir, name=name, show_progress=True)
    print(f"  index {name}: {report.total} chunks ({report.summary()}, {time.perf_counter() - t0:.0f} s)", flush=True)
    return index_dir


def test_queries(names: tuple[str, ...], n: int) -> list[str]:
    """The judged test queries of each set, interleaved (a, b, a, b, ...), the first ``n``."""
    from corpora import load_beir

    lists = [list(load_beir(data_dir() / name).judged_queries.values()) for name in names]
    mixed = [q for group in itertools.zip_longest(*lists) for q in group if q is not None]
    return mixed[:n]


class OldDenseRetriever(DenseRetriever):
    """Dense search as it was before the latency work, kept here so both run in one process: the
    query encoded on every call with whatever torch thread count the process has, and a Chroma
    ``count()`` (a SQLite query) before every HNSW search."""

    def ranked(self, query: str, k: int, selection=None):
        if selection is not None and not selection.ids:
            return []
        vector = self.embedder.encode_queries([query], instruction=self.instruction)[0]
        ids = None if selection is None or selection.everything else selection.ids
        store = self.index.store
        n = min(k, store.count() if ids is None else len(ids))
        if n <= 0:
            return []
        restrict = {} if ids is None else {"ids": ids}
        result = store.collection.query(query_embeddings=vector[None, :], n_results=n, include=["distances"],
                                        **restrict)
        return [(i, 1.0 - float(d)) for i, d in zip(result["ids"][0], result["distances"][0], strict=False)]


def old_retriever(index, kind: str, emb):
    if kind == "bm25":
        return index.retriever("bm25")
    dense = OldDenseRetriever(index, emb)
    if kind == "dense":
        return dense
    return HybridRetriever(index, dense, BM25Retriever(index), {"dense": 1.0, "bm25": 1.0}, 100)


def timed_paths(index, emb, kind: str, queries: list[str], old_threads: int, k: int = 10) -> dict[str, list[float]]:
    """Seconds per query for each code path, interleaved query by query (so load changes hit every
    path alike). ``new`` forgets cached query vectors before each search: every query is new."""
    paths = {"old": (old_retriever(index, kind, emb), old_threads), "old-1t": (old_retriever(index, kind, emb), 1),
             "new": (index.retriever(kind, emb), None)}
    out: dict[str, list[float]] = {name: [] for name in paths}
    for n, q in enumerate(queries):
        order = list(paths.items()) if n % 2 == 0 else list(reversed(paths.items()))
        for name, (retriever, threads) in order:
            index.forget_query_vectors()
            before = torch.get_num_threads()
            if threads is not None:
                torch.set_num_threads(threads)
            try:
                t0 = time.perf_counter()
                retriever.search(q, k)
                out[name].append(time.perf_counter() - t0)
            finally:
                torch.set_num_threads(before)
    return out


def compare_page(index, emb, queries: list[str], old_threads: int, depth: int = 100) -> dict[str, list[float]]:
    """Seconds per query of what the app's Compare page does: dense, BM25 and hybrid on the same
    query at k=100, one after the other. The new path encodes the query once (the index remembers
    its vector for hybrid); the old one encodes it for dense and again for hybrid."""
    out: dict[str, list[float]] = {"old": [], "new": []}
    for n, q in enumerate(queries):
        for name in (("old", "new") if n % 2 == 0 else ("new", "old")):
            index.forget_query_vectors()
            retrievers = [old_retriever(index, kind, emb) if name == "old" else index.retriever(kind, emb)
                          for kind in ("dense", "bm25", "hybrid")]
            before = torch.get_num_threads()
            if name == "old":
                torch.set_num_threads(old_threads)
            try:
                t0 = time.perf_counter()
                for retriever in retrievers:
                    retriever.search(q, depth)
                out[name].append(time.perf_counter() - t0)
            finally:
                torch.set_num_threads(before)
    return out


def first_query_ms(index_dir: Path, path: str, query: str, old_threads: int) -> tuple[float, float]:
    """(ms to get ready, ms of the first dense search) in a fresh process, where Chroma has not
    loaded the HNSW segment yet: ``old`` opens and searches; ``new`` opens, warms up (as the app
    does when it opens an index) and searches."""
    import json
    import subprocess

    code = ("import sys, json, time; sys.argv = ['bench/index.py']; sys.path.insert(0, "
            f"{str(Path(__file__).parent)!r});"
            f"import index as b; print('RESULT', json.dumps(b.first_query_child({str(index_dir)!r}, {path!r}, "
            f"{query!r}, {old_threads})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return tuple(json.loads(line[len("RESULT "):]))


def first_query_child(index_dir: str, path: str, query: str, old_threads: int) -> tuple[float, float]:
    emb = load_embedder("minilm")
    t0 = time.perf_counter()
    index = open_index(index_dir)
    if path == "new":
        index.warm_up(emb)
        retriever = index.retriever("dense", emb)
    else:
        torch.set_num_threads(old_threads)
        retriever = old_retriever(index, "dense", emb)
    ready = time.perf_counter() - t0
    t0 = time.perf_counter()
    retriever.search(query, 10)
    return ready * 1000, (time.perf_counter() - t0) * 1000


def check_same_hits(index, emb, queries: list[str], k: int = 10) -> int:
    """Queries (of ``queries``) on which the old and the new path differ in ids or order."""
    differ = 0
    for kind in ("dense", "hybrid"):
        old, new = old_retriever(index, kind, emb), index.retriever(kind, emb)
        for q in queries:
            index.forget_query_vectors()
            if old.search(q, k).ids != new.search(q, k).ids:
                differ += 1
    return differ


def split_ms(index, emb, queries: list[str], k: int = 10) -> dict[str, float]:
    """Median ms of each stage of a hybrid search on the new path."""
    from indexing.retrievers import rrf_fuse

    parts: dict[str, list[float]] = {"tokenize": [], "forward": [], "chroma": [], "bm25": [], "rrf+hits": []}
    for q in queries:
        t0 = time.perf_counter()
        ids = emb.query_ids([q])
        t1 = time.perf_counter()
        with query_threads():
            vector = emb.encode_ids(ids)[0]
        t2 = time.perf_counter()
        dense = index.store.query(vector, 100)
        t3 = time.perf_counter()
        lexical = index.bm25.search(q, 100)
        t4 = time.perf_counter()
        index.hits(rrf_fuse({"dense": [c for c, _ in dense], "bm25": [c for c, _ in lexical]})[:k])
        t5 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=False):
            parts[name].append(seconds)
    return {name: float(np.median(v) * 1000) for name, v in parts.items()}


def load_line() -> str:
    import os

    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def run_real(args) -> None:
    import os

    emb = load_embedder("minilm")
    old_threads = args.old_threads or os.cpu_count() or 1
    print(f"== query latency on real chunks: MiniLM on {emb.device}, torch {torch.__version__}, k=10, "
          f"query embedding included; {load_line()}")
    print(f"   old = the code before (torch threads {old_threads}: the process default without taskset; "
          f"Chroma count() per query); old-1t = the same at 1 thread; new = this code "
          f"(query threads {QUERY_THREADS}, no count(), in-memory records, vector LRU cleared per query)")
    rows = []
    for size in args.sizes:
        index_dir = real_index(emb, size)
        if args.build_only:
            continue
        t0 = time.perf_counter()
        index = open_index(index_dir)
        opened = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.warm_up(emb)
        warm = time.perf_counter() - t0
        print(f"\n-- {size}: {len(index.chunks)} chunks; open_index {opened:.2f} s, warm_up {warm * 1000:.0f} ms "
              f"(the first query paid this before)")
        sets = {"short": test_queries(SHORT_SETS[size], args.queries)}
        if LONG_SETS[size]:
            sets["long"] = test_queries(LONG_SETS[size], args.queries)
        for label, queries in sets.items():
            names = "+".join(SHORT_SETS[size] if label == "short" else LONG_SETS[size])
            print(f"   {label} queries: {len(queries)} ({names} test), median "
                  f"{np.median([len(emb.query_ids([q])[0]) for q in queries]):.0f} tokens")
            for kind in ("dense", "bm25", "hybrid"):
                times = timed_paths(index, emb, kind, queries, old_threads)
                rows.append((size, len(index.chunks), label, kind, times))
                cells = "   ".join(f"{name} p50 {percentile_ms(t, 50):6.1f} p95 {percentile_ms(t, 95):6.1f}"
                                   for name, t in times.items())
                ratio = percentile_ms(times["old"], 95) / percentile_ms(times["new"], 95)
                print(f"   {kind:7s} {cells}   ratio old/new p95: {ratio:.2f}", flush=True)
        page = compare_page(index, emb, sets["short"][: args.page_queries], old_threads)
        rows.append((size, len(index.chunks), "short", "Compare page: all three, k=100", page))
        ratio = percentile_ms(page["old"], 95) / percentile_ms(page["new"], 95)
        print(f"   Compare page (dense, bm25, hybrid on one query, k=100), {len(page['new'])} queries: "
              + "   ".join(f"{name} p50 {percentile_ms(t, 50):6.1f} p95 {percentile_ms(t, 95):6.1f}"
                           for name, t in page.items())
              + f"   ratio old/new p95: {ratio:.2f}")
        for path in ("old", "new"):
            ready, first = first_query_ms(index_dir, path, sets["short"][0], old_threads)
            print(f"   first dense search in a fresh process, {path}: {first:.0f} ms "
                  f"(open_index{' + warm_up' if path == 'new' else ''} before it: {ready:.0f} ms)")
        split = split_ms(index, emb, sets["short"][:50])
        print("   hybrid split (median ms, new path, short queries): "
              + ", ".join(f"{name} {ms:.1f}" for name, ms in split.items()))
        differ = check_same_hits(index, emb, sets["short"][: args.check])
        print(f"   same hits and order, old vs new, dense and hybrid on {args.check} queries: "
              f"{'yes' if not differ else f'NO, {differ} differ'}")
    if rows:
        print("\n| chunks | queries | retriever | old p50 | old p95 | new p50 | new p95 | p95 old/new |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- |")
        for _size, chunks, label, kind, times in rows:
            old, new = times["old"], times["new"]
            print(f"| {chunks:,} | {label} | {kind} | {percentile_ms(old, 50):.1f} | {percentile_ms(old, 95):.1f} | "
                  f"{percentile_ms(new, 50):.1f} | {percentile_ms(new, 95):.1f} | "
                  f"{percentile_ms(old, 95) / percentile_ms(new, 95):.1f} |")
    print(f"\n{load_line()} at the end")



def run_synthetic(args) -> None:
    emb = load_embedder("minilm", backend=args.backends[0])
    sampler = TextSampler()
    queries_n = args.queries or 100
    work = Path(tempfile.mkdtemp(prefix="linqrag-bench-index-"))
    try:
        if args.build_docs:
            print(f"== build: {args.build_docs} synthetic documents, MiniLM on {emb.device}")
            build = bench_build(emb, sampler, args.build_docs, work)
            print(f"build  {build['chunks']} chunks in {build['build_s']:.1f} s: "
                  f"{build['chunks'] / build['build_s']:.1f} chunks/s")
            print(f"encode only (same chunks): {build['chunks'] / build['encode_s']:.1f} chunks/s")
            print(f"ratio build/encode-only throughput: {build['encode_s'] / build['build_s']:.2f}")
            print(f"rebuild: {build['rebuild_s']:.2f} s, {build['rebuild_summary']}")

        for n, backend in enumerate(args.backends):  # the same chunks and queries for each backend
            emb = emb if n == 0 else load_embedder("minilm", backend=backend)
            print(f"\n== latency: {args.chunks} synthetic chunks, random unit vectors in Chroma (text is synthetic "
                  f"too), query embedder backend {emb.backend}", flush=True)
            sampler = TextSampler()
            chunks, index_dir = synthetic_index(emb, sampler, args.chunks, work / backend)
            index = open_index(index_dir)
            queries = make_queries(chunks, queries_n)
            for kind, t in bench_latency(index, emb, queries).items():
                print(f"{kind:7s} p50 {t['p50_ms']:7.1f} ms   p95 {t['p95_ms']:7.1f} ms", flush=True)

        print(f"\n== bm25s vs rank-bm25: {args.chunks} chunks, {args.rank_bm25_queries} queries, same tokens")
        engines = bench_bm25_engines(chunks, queries[: args.rank_bm25_queries])
        print(f"bm25s {engines['bm25s_ms']:.2f} ms/query, rank-bm25 {engines['rank_bm25_ms']:.1f} ms/query, "
              f"top-1 agreement {engines['top1_agreement']:.2f}, top-10 overlap {engines['top10_overlap']:.2f}")
        print(f"ratio rank-bm25/bm25s query time: {engines['rank_bm25_ms'] / engines['bm25s_ms']:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["10k", "50k"], choices=["10k", "50k"],
                        help="real indexes to time (default both)")
    parser.add_argument("--queries", type=int, default=0,
                        help="queries timed per retriever (default 200 real, 100 synthetic)")
    parser.add_argument("--old-threads", type=int, default=0,
                        help="torch threads of the old path (default os.cpu_count(), torch's own default off taskset)")
    parser.add_argument("--check", type=int, default=100, help="queries on which old and new hits are compared")
    parser.add_argument("--page-queries", type=int, default=50,
                        help="queries through the Compare page's three searches")
    parser.add_argument("--build-only", action="store_true", help="build or refresh the real indexes, time nothing")
    parser.add_argument("--backends", nargs="+", default=["auto"], metavar="BACKEND",
                        help="--synthetic: the query embedder's backend for the latency part, one pass each "
                             "(e.g. torch auto); the build part uses the first")
    parser.add_argument("--synthetic", action="store_true",
                        help="the earlier benchmark: synthetic build, random-vector latency, bm25s vs rank-bm25")
    parser.add_argument("--chunks", type=int, default=50000,
                        help="--synthetic: chunks in the latency index (default 50000)")
    parser.add_argument("--build-docs", type=int, default=600,
                        help="--synthetic: documents in the real build (default 600; 0 skips it)")
    parser.add_argument("--rank-bm25-queries", type=int, default=30,
                        help="--synthetic: queries for the slow reference engine")
    args = parser.parse_args()
    if args.synthetic:
        run_synthetic(args)
        return
    args.queries = args.queries or 200
    run_real(args)


if __name__ == "__main__":
    main()
