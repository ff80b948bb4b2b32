"""Finished adaptation runs, for the app's embedder picker: each run's best checkpoint and gain.

    from finetune.catalog import find_runs
    for run in find_runs():                          # under linqrag.settings.runs_dir()
        load_embedder(run.base, adapter=run.best_checkpoint)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AdaptedRun:
    name: str
    run_dir: str
    base: str
    best_checkpoint: str
    metric: str
    base_score: float | None
    best_score: float | None
    gain: float | None
    corpus: str

    @property
    def label(self) -> str:
        gain = f", {self.gain:+.3f} {self.metric} on held-out synthetic queries" if self.gain is not None else ""
        return f"{self.base} adapted to {Path(self.corpus).name} ({self.name}{gain})"


def find_runs(root: str | Path | None = None) -> list[AdaptedRun]:
    """Runs under ``root`` (default ``runs_dir()``) whose report names an existing best checkpoint."""
    if root is None:
        from linqrag.settings import runs_dir

        root = runs_dir()
    out = []
    for report_path in sorted(Path(root).glob("*/report.json")):
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError):
            continue
        best = report.get("best_checkpoint")
        if not best or not (Path(best) / "adapter_config.json").exists():
            continue
        evaluation = report.get("evaluation", {})
        rows = evaluation.get("rows", [])
        metric = evaluation.get("metric", "ndcg@10")
        best_row = evaluation.get("best") or {}
        out.append(AdaptedRun(
            name=report_path.parent.name, run_dir=str(report_path.parent), base=report.get("base", ""),
            best_checkpoint=best, metric=metric, base_score=rows[0].get(metric) if rows else None,
            best_score=best_row.get(metric), gain=report.get("gain"), corpus=report.get("config", {}).get("corpus", ""),
        ))
    return out
