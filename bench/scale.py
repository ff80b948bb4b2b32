"""Scaling out, measured on loopback: search through a Chroma server vs the embedded store at 50k
chunks, and embedding through a remote endpoint vs in-process; both in one process, as ratios.

    python bench/scale.py [--queries 200] [--texts 512]

1. Search. The 50k-chunk index of ``bench/index.py`` (SciFact + NFCorpus + PEPs + AILA case
   documents, MiniLM; built there and cached in ``~/.cache/linqrag/bench-index/mix-50k``) is
   copied once into a ``chroma run`` server (vectors, texts and metadata read from the embedded
   collection, the manifest published as a build would; cached beside it), then opened both ways.
   Each SciFact/NFCorpus test query runs dense and hybrid through both, alternating, query
   encoding included (the LRU of query vectors is cleared, so each search encodes). A check that
   both return the same hits comes first.
2. Embedding. ``python -m app api --embedder minilm`` on a free port; ``--texts`` chunk texts of
   the index embedded in-process (``encode_documents``) and through ``openai:minilm@URL``
   (batches of 64), texts/s each, and the largest difference between the two sets of vectors.

Prints ``ratio server/embedded search p95 (dense|hybrid): X`` and ``ratio remote/in-process
embedding throughput: X``. The server, the API and this process share the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from linqrag.settings import apply_offline_env

apply_offline_env()

PAGE = 2000


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def copy_to_server(index, url: str) -> None:
    """The embedded collection into the server (skipped when the server holds it all already)."""
    from indexing.chroma_client import http_client
    from indexing.remote import publish_manifest
    from indexing.store import VectorStore

    server = VectorStore(index.index_dir, index.key, index.manifest.signature, url=url)
    total = index.store.count()
    if server.count() == total:
        return
    client = http_client(url)
    t0 = time.perf_counter()
    for offset in range(0, total, PAGE):
        got = index.store.collection.get(limit=PAGE, offset=offset, include=["embeddings", "documents", "metadatas"])
        server.collection.upsert(ids=got["ids"], embeddings=np.asarray(got["embeddings"], dtype=np.float32),
                                 documents=got["documents"], metadatas=got["metadatas"])
        print(f"  copied {offset + len(got['ids'])}/{total} vectors ({time.perf_counter() - t0:.0f} s)", end="\r",
              flush=True)
    publish_manifest(client, url, index.key, index.manifest)
    print()


def bench_search(args, emb) -> None:
    from index import test_queries  # bench/index.py

    from indexing import open_index
    from indexing.chroma_server import ChromaServer
    from indexing.retrieval import query_threads
    from linqrag.settings import cache_dir

    cache = cache_dir() / "bench-index"
    if not (cache / "mix-50k" / "linqrag-index.json").exists():
        raise SystemExit("no 50k index yet: run `python bench/index.py --sizes 50k` first (about an hour on one core)")
    embedded = open_index(cache / "mix-50k")
    with ChromaServer(cache / "scale-chroma-server", port=args.port) as server:
        copy_to_server(embedded, server.url)
        remote = open_index(cache / "scale-remote-cache", chroma_url=server.url)
        print(f"search: {len(embedded.chunks)} chunks embedded, {remote.store.count()} vectors on {server.url}")
        queries = test_queries(("scifact", "nfcorpus"), args.queries)
        with query_threads():
            for index in (embedded, remote):
                index.warm_up(emb)
        local_dense, remote_dense = embedded.retriever("dense", emb), remote.retriever("dense", emb)
        same = sum(local_dense.search(q, 10).ids == remote_dense.search(q, 10).ids for q in queries[:50])
        print(f"  same top-10 dense hits on {same}/50 queries")
        times = {(kind, where): [] for kind in ("dense", "hybrid") for where in ("embedded", "server")}
        for query in queries:
            for kind in ("dense", "hybrid"):
                for where, index in (("embedded", embedded), ("server", remote)):
                    index.forget_query_vectors()
                    retriever = index.retriever(kind, emb)
                    t0 = time.perf_counter()
                    retriever.search(query, 10)
                    times[kind, where].append(time.perf_counter() - t0)
        print(f"  {'path':22s} {'p50 ms':>8s} {'p95 ms':>8s}")
        for (kind, where), t in times.items():
            print(f"  {kind + ' ' + where:22s} {pct(t, 50):8.1f} {pct(t, 95):8.1f}")
        for kind in ("dense", "hybrid"):
            ratio = pct(times[kind, "server"], 95) / pct(times[kind, "embedded"], 95)
            print(f"ratio server/embedded search p95 ({kind}): {ratio:.2f}")


def bench_embedding(args, emb) -> None:
    import httpx

    from embedder import load_embedder
    from indexing import open_index
    from indexing.chroma_server import free_port
    from linqrag.settings import cache_dir

    index = open_index(cache_dir() / "bench-index" / "mix-50k")
    texts = [c.indexed_text for c in list(index.chunks.values())[: args.texts]]
    port = free_port()
    api = subprocess.Popen([sys.executable, "-m", "app", "api", "--embedder", "minilm", "--port", str(port),
                            "--preload"],
                           env=dict(os.environ), stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or api.poll() is not None:
                    raise SystemExit("the API server did not start") from None
                time.sleep(0.3)
        remote = load_embedder(f"openai:minilm@http://127.0.0.1:{port}/v1", batch_size=64)
        remote.encode(texts[:8])  # connection and the server's first forward
        emb.encode_documents(texts[:8])
        t0 = time.perf_counter()
        local_vectors = emb.encode_documents(texts, batch_size=64)
        local_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        remote_vectors = remote.encode_documents(texts)
        remote_s = time.perf_counter() - t0
    finally:
        api.terminate()
        api.wait(20)
    print(f"embedding {len(texts)} chunks: in-process {len(texts) / local_s:.1f} texts/s, remote "
          f"{len(texts) / remote_s:.1f} texts/s ({remote.calls} requests), max |diff| "
          f"{np.abs(local_vectors - remote_vectors).max():.2e}")
    print(f"ratio remote/in-process embedding throughput: {local_s / remote_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--port", type=int, default=0, help="Chroma server port (default: a free one)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for document encoding")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-embedding", action="store_true")
    args = parser.parse_args()
    import torch

    from embedder import load_embedder

    torch.set_num_threads(args.threads)
    emb = load_embedder("minilm")
    print(f"load average {os.getloadavg()[0]:.2f}")
    if not args.skip_search:
        bench_search(args, emb)
    if not args.skip_embedding:
        bench_embedding(args, emb)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
