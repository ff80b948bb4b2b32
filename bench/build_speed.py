"""A whole index build of a real corpus, the old default against the new, with where the time goes.

    python bench/build_speed.py [--corpus python_peps] [--old torch] [--new auto] [--limit N]

The corpus: the 703 PEPs of ../shared/data/python_peps (about 19,600 chunks), or a BEIR folder of
the shared data (``scifact``). Each build starts from an empty index directory in one process,
old first: the embedder loaded with ``--old`` (``torch``: the default before the ONNX path) and then
with ``--new`` (``auto``: today's default), the rest of the build identical. The stages are timed by
wrapping the build's own calls: load the model, read the corpus, chunk (tokenise included), embed,
Chroma upserts, BM25, and the rest; a stage over a tenth of the build is what to shrink next. The
ONNX export is timed once on its own (it is cached: later builds skip it). The last line is
``speed-up old/new build seconds: X``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, cache_dir, data_dir

apply_offline_env()


def corpus_folder(name: str, limit: int | None) -> Path:
    """The PEPs as one JSONL file in the cache (never in the project), or the BEIR folder as it is."""
    if name != "python_peps":
        return data_dir() / name
    folder = cache_dir() / "bench-build" / f"peps-{limit or 'all'}"
    target = folder / "peps.jsonl"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with gzip.open(data_dir() / "python_peps" / "peps.jsonl.gz", "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines(keepends=True)
        target.write_text("".join(lines[:limit] if limit else lines), encoding="utf-8")
    return folder


@contextlib.contextmanager
def timed_calls(times: dict[str, float]):
    """Add the wall time of the build's own calls to ``times`` (by stage) while the block runs."""
    import indexing.build as build
    from indexing.bm25 import BM25Index
    from indexing.store import VectorStore

    patched = [(build, "load_corpus", "read"), (build, "chunk_documents", "chunk"),
               (VectorStore, "upsert", "chroma upsert"), (BM25Index, "build", "bm25")]
    originals = []
    for owner, name, stage in patched:
        original = owner.__dict__[name]
        func = original.__func__ if isinstance(original, classmethod) else original

        def timer(*args, _func=func, _stage=stage, **kwargs):
            started = time.perf_counter()
            try:
                return _func(*args, **kwargs)
            finally:
                times[_stage] += time.perf_counter() - started

        wrapped = functools.wraps(func)(timer)
        setattr(owner, name, classmethod(wrapped) if isinstance(original, classmethod) else wrapped)
        originals.append((owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def one_build(corpus: Path, backend: str) -> tuple[float, dict[str, float], int]:
    from embedder import load_embedder
    from indexing import build_index

    times: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    embedder = load_embedder("minilm", backend=backend)
    times["load model"] = time.perf_counter() - started
    encode = embedder.encode_documents

    def timed_encode(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return encode(*args, **kwargs)
        finally:
            times["embed"] += time.perf_counter() - t0

    embedder.encode_documents = timed_encode
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        with timed_calls(times):
            report = build_index(corpus, embedder, work, show_progress=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    times["other"] = total - sum(times.values())
    return total, dict(times), report.total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="python_peps")
    parser.add_argument("--old", default="torch")
    parser.add_argument("--new", default="auto")
    parser.add_argument("--limit", type=int, help="only the first N documents (a quick look, not the measurement)")
    args = parser.parse_args()
    corpus = corpus_folder(args.corpus, args.limit)

    from embedder import load_embedder
    from embedder.onnx import onnx_model_path

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as fresh:
        onnx_model_path(load_embedder("minilm", backend="torch"), quantized=True, cache=Path(fresh))
    print(f"one-time ONNX export and int8 quantisation of MiniLM (cached afterwards): "
          f"{time.perf_counter() - started:.1f} s", flush=True)

    results = {}
    for label, backend in (("old", args.old), ("new", args.new)):
        total, times, chunks = one_build(corpus, backend)
        results[label] = total
        print(f"\n{label} ({backend}): {chunks} chunks in {total:.1f} s, {chunks / total:.1f} chunks/s", flush=True)
        for stage, seconds in sorted(times.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:14s} {seconds:8.1f} s  {100 * seconds / total:5.1f} %")
    print(f"\nspeed-up old/new build seconds: {results['old'] / results['new']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
