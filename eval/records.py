"""What a scoring run leaves behind: per-task scores and the run around them, as JSON.

A run's JSON sits beside the checkpoint it scored (``<adapter dir>/eval-<suite>.json``), so a
directory of checkpoints is also a directory of results that ``python -m eval compare`` reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eval.errors import EvalError
from eval.localdata import RETRIEVAL, STS
from eval.suites import Suite
from linqrag.files import write_atomic

RESULTS_PREFIX = "eval-"
RANK_KEYS = ("retrieval", "sts", "all")


@dataclass
class TaskScore:
    """One task's outcome: the main score (nDCG@10 or Spearman) and the other metrics mteb gave."""

    task: str
    mteb_name: str
    kind: str
    main_metric: str
    main_score: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False
    note: str = ""


@dataclass
class RunRecord:
    """A model scored on a suite: identity of the weights, the suite definition, scores and times."""

    label: str
    embedder: str
    adapter: str | None
    signature: str
    revision: str
    suite: Suite
    quantization: str
    max_length: int | None
    tasks: list[TaskScore]
    wall_seconds: float
    load_seconds: float
    created: str
    versions: dict[str, str] = field(default_factory=dict)
    #: The data folder the local tasks were read from (compare scores BM25 from the same one).
    data_root: str | None = None
    path: Path | None = field(default=None, compare=False)

    def score_of(self, task: str) -> float | None:
        return next((t.main_score for t in self.tasks if t.task == task), None)

    def mean(self, key: str = "retrieval") -> float | None:
        """Mean main score over retrieval tasks, STS tasks or all; None when one of them has no score."""
        if key not in RANK_KEYS:
            raise EvalError(f"rank key must be one of {RANK_KEYS}")
        kinds = {"retrieval": {RETRIEVAL}, "sts": {STS}, "all": {RETRIEVAL, STS}}[key]
        scores = [t.main_score for t in self.tasks if t.kind in kinds]
        if not scores or any(s is None for s in scores):
            return None
        return sum(scores) / len(scores)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["suite"] = self.suite.to_dict()
        data.pop("path")
        data["means"] = {k: self.mean(k) for k in RANK_KEYS}
        return data

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> RunRecord:
        data = dict(data)
        data.pop("means", None)
        data["suite"] = Suite.from_dict(data["suite"])
        data["tasks"] = [TaskScore(**t) for t in data["tasks"]]
        return cls(**data, path=path)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{RESULTS_PREFIX}{self.suite.name}.json"
        write_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")
        self.path = path
        return path


def load_record(path: Path) -> RunRecord:
    try:
        return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EvalError(f"{path} is not a linqrag eval results file ({error.__class__.__name__}: {error})") from None


def load_runs(path: Path, suite: str | None = None) -> list[RunRecord]:
    """The results in a run directory (``eval-*.json``; one suite if given), or one results file."""
    path = Path(path).expanduser()
    if path.is_file():
        return [load_record(path)]
    if not path.is_dir():
        raise EvalError(f"{path} does not exist")
    files = sorted(path.glob(f"{RESULTS_PREFIX}*.json"))
    if suite is not None:
        files = [f for f in files if f.name == f"{RESULTS_PREFIX}{suite}.json"]
    if not files:
        which = f" for suite {suite!r}" if suite else ""
        raise EvalError(f"{path} holds no results{which} ({RESULTS_PREFIX}<suite>.json); "
                        "run `python -m eval score ... --out` on it first")
    return [load_record(f) for f in files]
