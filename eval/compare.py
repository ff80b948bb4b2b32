"""``compare``: runs of one suite side by side, ranked by their main score, as a table and a plot.

BM25 is always a row: when none of the runs is BM25, it is scored on the same suite (the suite
definition travels in every results file) through the same harness, from the cache when it can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eval.errors import EvalError
from eval.records import RANK_KEYS, RunRecord, load_runs

BM25 = "bm25"


@dataclass
class Comparison:
    """Runs of one suite, best first by ``by`` (``retrieval``, ``sts`` or ``all``)."""

    suite: str
    by: str
    runs: list[RunRecord]
    tasks: list[str] = field(default_factory=list)

    def scores(self, key: str | None = None) -> dict[str, float | None]:
        return {r.label: r.mean(key or self.by) for r in self.runs}


def pick_suite(records: list[RunRecord], suite: str | None) -> str:
    names = sorted({r.suite.name for r in records})
    if suite is not None:
        return suite
    if len(names) == 1:
        return names[0]
    raise EvalError(f"the runs hold results of several suites ({', '.join(names)}): choose one with --suite")


def collect(paths: list[Path], suite: str | None = None) -> tuple[str, list[RunRecord]]:
    """The records of one suite from run directories or files, with the same task definitions."""
    records = [r for p in paths for r in load_runs(Path(p), suite)]
    name = pick_suite(records, suite)
    records = [r for r in records if r.suite.name == name]
    if not records:
        raise EvalError(f"no run holds results for suite {name!r}")
    reference = records[0].suite.tasks
    for r in records[1:]:
        if r.suite.tasks != reference:
            raise EvalError(f"{r.path} scored suite {name!r} with other tasks or samples than {records[0].path}; "
                            "they are not comparable")
    return name, records


def ensure_bm25(records: list[RunRecord], cache: Path | None = None, data_root: Path | None = None,
                show_progress: bool = True) -> list[RunRecord]:
    """``records`` plus a BM25 run on their suite when they hold none."""
    if any(r.embedder == BM25 for r in records):
        return records
    from eval.harness import ScoreConfig, default_cache_path, score

    root = data_root or (Path(records[0].data_root) if records[0].data_root else None)
    config = ScoreConfig(embedder=BM25, suite=records[0].suite, cache=cache or default_cache_path(),
                         data_root=root, show_progress=show_progress, write=False)
    return [*records, score(config)]


def compare(paths: list[Path], suite: str | None = None, by: str = "retrieval", with_bm25: bool = True,
            cache: Path | None = None, data_root: Path | None = None, show_progress: bool = True) -> Comparison:
    """Load, add BM25, rank. ``by`` picks the mean the ranking uses."""
    if by not in RANK_KEYS:
        raise EvalError(f"--by must be one of {RANK_KEYS}")
    name, records = collect(paths, suite)
    if with_bm25:
        records = ensure_bm25(records, cache, data_root, show_progress)
    records.sort(key=lambda r: (r.mean(by) is None, -(r.mean(by) or 0.0), r.label))
    tasks = [t.name for t in records[0].suite.tasks]
    return Comparison(name, by, records, tasks)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def format_table(comparison: Comparison, markdown: bool = False) -> str:
    """One row per run: rank, label, each task's main score, the means, precision and wall time."""
    header = ["#", "run", *comparison.tasks, "retrieval", "sts", "all", "dtype", "wall s"]
    rows = []
    for rank, r in enumerate(comparison.runs, 1):
        rows.append([str(rank), r.label, *(_cell(r.score_of(t)) for t in comparison.tasks),
                     *(_cell(r.mean(k)) for k in RANK_KEYS), r.quantization, f"{r.wall_seconds:.0f}"])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [f"suite {comparison.suite}, ranked by the {comparison.by} mean (main scores: nDCG@10, Spearman)",
             fmt.format(*header), *(fmt.format(*row) for row in rows)]
    return "\n".join(lines)


def plot(comparison: Comparison, path: Path) -> Path:
    """Grouped bars: each task's main score and the ranking mean, one bar per run (BM25 hatched)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [*comparison.tasks, f"{comparison.by} mean"]
    n = len(comparison.runs)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(groups) + 1), 4.2))
    for i, run in enumerate(comparison.runs):
        values = [run.score_of(t) for t in comparison.tasks] + [run.mean(comparison.by)]
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=f"{i + 1}. {run.label}",
                      hatch="//" if run.embedder == BM25 else None, color="0.75" if run.embedder == BM25 else None)
        for bar, v in zip(bars, values, strict=False):
            if v is None:
                bar.set_alpha(0.0)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
    ax.set_ylabel("main score (nDCG@10 / Spearman)")
    ax.set_ylim(0, 1)
    ax.set_title(f"suite {comparison.suite}: ranked by {comparison.by} mean")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
