"""``python -m eval``: score a checkpoint on a suite, compare runs, list the suites.

A thin argparse layer over :func:`eval.harness.score` and :func:`eval.compare.compare`. Problems the
user can fix (a missing dataset, an unknown task, a run directory without results, a model that is
not installed) print one ``error:`` line and exit with code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from embedder.presets import PRESETS
from embedder.spec import BACKEND_CHOICES, QUANTIZATION_CHOICES
from linqrag.errors import run_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eval",
        description="Streamlined MTEB evaluation of embedder checkpoints (offline, on the local data sets).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "score",
        help="score a model or checkpoint on a suite and write eval-<suite>.json beside it",
        description="Score an embedder (optionally with a LoRA adapter) or BM25 on a suite. Results go to "
        "<adapter>/eval-<suite>.json (or --out); mteb's result cache is keyed by the embedder signature, "
        "which includes the adapter's content digest, so a new checkpoint is never served a cached score.",
    )
    s.add_argument("--embedder", default=None,
                   help=f"preset ({', '.join(PRESETS)}), hub id, local path, or 'bm25'; "
                   "default: the adapter's base, else minilm")
    s.add_argument("--adapter", type=Path, help="a PEFT LoRA adapter directory put on the embedder")
    s.add_argument("--suite", nargs="+", default=["streamlined"], metavar="SUITE|TASK",
                   help="'streamlined' (default), 'full', or task names: local sets (SciFact, NFCorpus, "
                   "AILAStatutes, AILACasedocs, STSBenchmark, SICK-R), BEIR folders, MTEB tasks or benchmarks "
                   "(need LINQRAG_ONLINE=1 unless cached); add ':streamlined' to a task for its light set")
    s.add_argument("--quantization", choices=QUANTIZATION_CHOICES,
                   help="decoder precision (default: the suite's; streamlined: auto, 4-bit for large decoders "
                        "on a GPU)")
    s.add_argument("--max-length", type=int, help="token window (e.g. 128 for smollm2 on a CPU)")
    s.add_argument("--backend", choices=BACKEND_CHOICES, default="torch",
                   help="how an encoder runs: torch (default), onnx, onnx-int8, openvino-bf16 or auto (what an "
                        "index build picks); scores are cached per backend")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a busy 2-core machine)")
    s.add_argument("--out", type=Path, help="directory for eval-<suite>.json (default: the adapter dir, "
                   "else ~/.cache/linqrag/eval/runs/<model>)")
    s.add_argument("--cache-dir", type=Path, help="mteb result cache (default ~/.cache/linqrag/mteb-results)")
    s.add_argument("--no-cache", action="store_true", help="neither read nor write mteb's result cache")
    s.add_argument("--overwrite", action="store_true", help="re-run tasks even when cached, and refresh the cache")
    s.add_argument("--data", type=Path, help="data folder (default: LINQRAG_DATA or ../shared/data)")
    s.add_argument("--predictions", action="store_true", help="also save each task's rankings/scores")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_score)

    c = sub.add_parser(
        "compare",
        help="rank runs of one suite: a table and a plot, BM25 always included",
        description="Read eval-<suite>.json from each RUN_DIR (checkpoint directories, --out directories or "
        "the JSON files themselves), add BM25 on the same suite if absent, and rank by the main score.",
    )
    c.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    c.add_argument("--suite", help="which suite's results to compare when the runs hold several")
    c.add_argument("--by", choices=("retrieval", "sts", "all"), default="retrieval",
                   help="rank by the mean nDCG@10 of the retrieval tasks (default), the STS mean, or all tasks")
    c.add_argument("--plot", type=Path,
                   help="where to save the plot (default ~/.cache/linqrag/eval/compare-<suite>.png)")
    c.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    c.add_argument("--no-bm25", action="store_true", help="do not add the BM25 row")
    c.add_argument("--cache-dir", type=Path, help="mteb result cache for the BM25 row")
    c.add_argument("--data", type=Path, help="data folder for the BM25 row")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=cmd_compare)

    listing = sub.add_parser("suites", help="list the suites, their tasks and whether the local data is present")
    listing.set_defaults(func=cmd_suites)
    return parser


def print_task(t) -> None:
    size = ", ".join(f"{v} {k}" for k, v in t.size.items())
    value = "n/a" if t.main_score is None else f"{t.main_score:.4f}"
    flag = " (cached)" if t.cached else ""
    note = f" {t.note}" if t.note else ""
    print(f"  {t.task:<14} {t.main_metric:<16} {value:>7}  {t.seconds:7.1f}s{flag}  [{size}]{note}", flush=True)


def cmd_score(args: argparse.Namespace) -> int:
    from eval.harness import ScoreConfig, default_cache_path, score

    embedder = args.embedder if (args.embedder or args.adapter) else "minilm"
    cache = None if args.no_cache else (args.cache_dir or default_cache_path())
    config = ScoreConfig(
        embedder=embedder, adapter=args.adapter, suite=args.suite, quantization=args.quantization,
        max_length=args.max_length, batch_size=args.batch_size, backend=args.backend, out_dir=args.out, cache=cache,
        overwrite=args.overwrite, data_root=args.data, show_progress=not args.quiet,
        save_predictions=args.predictions, threads=args.threads,
    )
    config.on_task = print_task
    print(f"scoring on suite {' '.join(args.suite)} (one line per task as it finishes)", flush=True)
    record = score(config)
    print(f"\n{record.label} on suite {record.suite.name} ({record.quantization}, revision {record.revision})")
    means = ", ".join(f"{k} {'n/a' if record.mean(k) is None else f'{record.mean(k):.4f}'}"
                      for k in ("retrieval", "sts", "all"))
    print(f"  means: {means}; wall {record.wall_seconds:.1f}s (model load {record.load_seconds:.1f}s)")
    print(f"results: {record.path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from eval.compare import compare, format_table, plot
    from linqrag.settings import cache_dir

    comparison = compare(args.runs, suite=args.suite, by=args.by, with_bm25=not args.no_bm25,
                         cache=args.cache_dir, data_root=args.data, show_progress=not args.quiet)
    print(format_table(comparison, markdown=args.markdown))
    path = plot(comparison, args.plot or cache_dir() / "eval" / f"compare-{comparison.suite}.png")
    print(f"plot: {path}")
    return 0


def cmd_suites(args: argparse.Namespace) -> int:
    from eval.localdata import LOCAL_DATASETS
    from eval.suites import DEFAULT_SUITE, SUITES
    from linqrag.settings import data_dir

    root = data_dir()
    for suite in SUITES.values():
        default = " (default)" if suite.name == DEFAULT_SUITE else ""
        print(f"{suite.name}{default}: {suite.description}")
        for t in suite.tasks:
            print(f"  {t.label}")
    print(f"\nlocal sets in {root}:")
    for d in LOCAL_DATASETS.values():
        present = "present" if (root / d.folder).is_dir() else "MISSING"
        print(f"  {d.name:<14} {d.kind:<9} {d.folder:<15} {present}  {d.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv)
