"""Agreement study: does the streamlined suite rank models like the full local sets, and how much faster?

    python bench/eval_agreement.py [--models minilm smollm2 bm25] [--adapter PATH ...]
                                   [--smollm2-max-length 128] [--tasks SciFact AILAStatutes ...]
                                   [--out DIR] [--reuse]

Every model is scored on the streamlined suite and on the full sets of the same tasks, in this one
process, with mteb's result cache off (each number is real work). The light sets are built first,
once (their dense pool encodes the full corpora), and that one-time cost is reported apart. It prints, as Markdown: the
scores on both, the orderings and Kendall's tau between them (by the retrieval mean, all rows, and
by the all-task mean, the rows that have STS), the wall time of each run, and the speed-up ratio
full / streamlined. ``--adapter PATH`` adds a fine-tuned checkpoint (a PEFT LoRA directory) as a row;
``--adapter-base`` names its base when the adapter does not record it. With ``--reuse``, rows whose
results already sit in ``--out`` are read instead of re-run (their times are the earlier run's).
The last line is ``speed-up full/streamlined: X``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linqrag.settings import apply_offline_env, cache_dir, data_dir

apply_offline_env()

import torch

from embedder import adapter_base
from eval.agreement import kendall_tau, ordering
from eval.harness import ScoreConfig, score
from eval.records import RunRecord, load_record
from eval.suites import STREAMLINED_SAMPLING, SUITES, Suite, TaskSpec
from eval.tasks import prepare_task

#: The study's default tasks: on a 2-core CPU the smollm2 decoder (~500 tokens/s at best) cannot embed
#: SciFact's or NFCorpus' full corpora in the budget; add them with --tasks on a faster machine.
DEFAULT_TASKS = ("AILAStatutes", "STSBenchmark", "SICK-R")


@dataclass(frozen=True)
class Row:
    """One model of the study."""

    label: str
    embedder: str | None
    adapter: Path | None = None
    max_length: int | None = None


def study_suites(tasks: list[str]) -> tuple[Suite, Suite]:
    """The streamlined and full suites restricted to ``tasks`` (same tasks, same order)."""
    streamlined = Suite("study-streamlined", tuple(TaskSpec(t, STREAMLINED_SAMPLING[t]) for t in tasks),
                        SUITES["streamlined"].decoder_quantization, SUITES["streamlined"].description)
    full = Suite("study-full", tuple(TaskSpec(t) for t in tasks), SUITES["full"].decoder_quantization,
                 SUITES["full"].description)
    return streamlined, full


def build_light_sets(suite: Suite, samples: Path) -> float:
    """Build (or find) the streamlined light sets once, as every checkpoint after the first would; seconds."""
    started = time.perf_counter()
    for spec in suite.tasks:
        prepare_task(spec, data_dir(), sample_cache=samples)
    return time.perf_counter() - started


def run_row(row: Row, suite: Suite, out: Path, reuse: bool, batch_size: int, threads: int | None) -> RunRecord:
    folder = out / row.label.replace("/", "_")
    saved = folder / f"eval-{suite.name}.json"
    if reuse and saved.exists():
        record = load_record(saved)
        print(f"  reused {saved}", flush=True)
        return record
    load_before = os.getloadavg()[0]
    config = ScoreConfig(embedder=row.embedder, adapter=row.adapter, suite=suite, max_length=row.max_length,
                         batch_size=batch_size, cache=None, out_dir=folder, show_progress=False, threads=threads,
                         sample_cache=out / "samples")
    record = score(config)
    record.label = row.label
    record.versions["loadavg_1min_before_after"] = f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"
    record.save(folder)
    scores = ", ".join(f"{t.task} {t.main_score:.4f}" if t.main_score is not None else f"{t.task} n/a"
                       for t in record.tasks)
    print(f"  {row.label:<22} {suite.name:<18} {record.wall_seconds:7.1f}s  {scores}", flush=True)
    return record


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def report(rows: list[Row], runs: dict[str, dict[str, RunRecord]], tasks: list[str], build_seconds: float) -> str:
    lines = []
    for suite_key in ("streamlined", "full"):
        lines.append(f"\n**{suite_key}** (main scores: nDCG@10 for retrieval, Spearman for STS)\n")
        lines.append("| model | " + " | ".join(tasks) + " | retrieval mean | all mean | wall s |")
        lines.append("| --- " * (len(tasks) + 4) + "|")
        for row in rows:
            r = runs[suite_key][row.label]
            lines.append(f"| {row.label} | " + " | ".join(_fmt(r.score_of(t)) for t in tasks)
                         + f" | {_fmt(r.mean('retrieval'))} | {_fmt(r.mean('all'))} | {r.wall_seconds:.0f} |")
    lines.append("\n| ranking by | streamlined order | full order | Kendall tau |")
    lines.append("| --- | --- | --- | --- |")
    for key in ("retrieval", "all"):
        s = {row.label: runs["streamlined"][row.label].mean(key) for row in rows}
        f = {row.label: runs["full"][row.label].mean(key) for row in rows}
        tau = kendall_tau(s, f)
        lines.append(f"| {key} mean | {' > '.join(ordering(s))} | {' > '.join(ordering(f))} | "
                     f"{'n/a' if tau is None else f'{tau:.3f}'} |")
    for task in tasks:
        s = {row.label: runs["streamlined"][row.label].score_of(task) for row in rows}
        f = {row.label: runs["full"][row.label].score_of(task) for row in rows}
        tau = kendall_tau(s, f)
        lines.append(f"| {task} | {' > '.join(ordering(s))} | {' > '.join(ordering(f))} | "
                     f"{'n/a' if tau is None else f'{tau:.3f}'} |")
    lines.append("\n| model | streamlined s | full s | speed-up |")
    lines.append("| --- | --- | --- | --- |")
    total_s = total_f = 0.0
    for row in rows:
        ws, wf = runs["streamlined"][row.label].wall_seconds, runs["full"][row.label].wall_seconds
        total_s, total_f = total_s + ws, total_f + wf
        lines.append(f"| {row.label} | {ws:.0f} | {wf:.0f} | {wf / ws:.1f}x |")
    lines.append(f"| **all** | {total_s:.0f} | {total_f:.0f} | {total_f / total_s:.1f}x |")
    lines.append(f"\none-time light-set construction (BM25 + MiniLM pools; not in the streamlined times): "
                 f"{build_seconds:.0f}s")
    lines.append(f"\nspeed-up full/streamlined: {total_f / total_s:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["minilm", "smollm2", "bm25"],
                        help="presets or 'bm25' (default: minilm smollm2 bm25)")
    parser.add_argument("--adapter", type=Path, action="append", default=[],
                        help="a fine-tuned PEFT LoRA checkpoint to add as a row (repeatable)")
    parser.add_argument("--adapter-base", help="the adapters' base preset when they do not record it")
    parser.add_argument("--smollm2-max-length", type=int, default=128,
                        help="token window of smollm2 rows and of adapters on it (CPU budget)")
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS),
                        help=f"tasks of both suites (default: {' '.join(DEFAULT_TASKS)}; the CPU budget)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: faster than 2 on a 2-core machine shared with other jobs)")
    parser.add_argument("--out", type=Path, default=cache_dir() / "eval" / "agreement")
    parser.add_argument("--reuse", action="store_true", help="read rows already in --out instead of re-running")
    args = parser.parse_args()

    rows = [Row(m, m, None, args.smollm2_max_length if m == "smollm2" else None) for m in args.models]
    for adapter in args.adapter:
        base = args.adapter_base or adapter_base(adapter)
        length = args.smollm2_max_length if base and "smollm2" in base.lower() else None
        rows.append(Row(f"{base}+{adapter.name}" if base else adapter.name, args.adapter_base, adapter, length))
    streamlined, full = study_suites(args.tasks)
    print(f"tasks: {', '.join(args.tasks)}; rows: {', '.join(r.label for r in rows)}; "
          f"smollm2 max_length {args.smollm2_max_length}; torch threads {args.threads} of {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    build_seconds = build_light_sets(streamlined, args.out / "samples")
    print(f"  light sets built once (BM25 + MiniLM pools over the full corpora): {build_seconds:.0f}s", flush=True)
    started = time.perf_counter()
    runs: dict[str, dict[str, RunRecord]] = {"streamlined": {}, "full": {}}
    for row in rows:
        runs["streamlined"][row.label] = run_row(row, streamlined, args.out, args.reuse, args.batch_size, args.threads)
        runs["full"][row.label] = run_row(row, full, args.out, args.reuse, args.batch_size, args.threads)
    text = report(rows, runs, args.tasks, build_seconds)
    summary = {"tasks": args.tasks, "rows": [r.label for r in rows], "study_seconds": time.perf_counter() - started,
               "light_set_seconds": build_seconds, "report": text}
    (args.out / "agreement.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"\nstudy wall time {summary['study_seconds']:.0f}s; results in {args.out}")
    print(text)


if __name__ == "__main__":
    main()
