"""The run directory: one file per stage output, written atomically, plus a stage ledger.

Every file is written whole or not at all (:mod:`linqrag.files`). A stage is done when its name
is in ``stages.json``; it is marked only after all of its files are in place, so a run killed
mid-stage redoes that stage (and only it) on the next start.
Append-only logs (the generation cache, the loss log) survive a kill up to the last full line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from linqrag.errors import LinqragError
from linqrag.files import write_json_atomic

if TYPE_CHECKING:
    from finetune.records import ChunkPool, SyntheticPair, Task, TrainingExample

STAGES = ("chunk", "brainstorm", "generate", "filter", "mine", "train", "evaluate", "report")


class RunDirError(LinqragError, RuntimeError):
    """The run directory does not fit the request (another corpus, a missing earlier stage)."""


def read_json(path: Path, default=None):
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def iter_jsonl(path: Path) -> Iterator[dict]:
    """Rows of a JSON-lines file; a torn last line (a killed writer) is skipped, not fatal."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def append_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Append and flush to disk, so what was paid for (LLM calls, steps) survives a kill."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        fh.flush()
        os.fsync(fh.fileno())


def _member(relative: str) -> property:
    """A file or folder of the run directory, by its fixed name."""
    return property(lambda self: self.root / relative, doc=f"``{relative}`` inside the run directory")


class RunDir:
    """Paths of a run, the ledger of finished stages, and the readers of what each stage wrote:
    a stage reads its inputs here, never through the module that wrote them."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / name

    # stage outputs
    chunks = _member("chunks.jsonl")
    split_file = _member("split.json")
    tasks_file = _member("tasks.json")
    pairs_file = _member("pairs.jsonl")
    rejections = _member("rejections.jsonl")
    filtered = _member("filtered.jsonl")
    examples_file = _member("train_examples.jsonl")
    checkpoints = _member("checkpoints")
    losses = _member("losses.jsonl")
    generation_cache = _member("cache/generations.jsonl")

    # stage outputs, read back
    def pool(self) -> ChunkPool:
        """The chunk stage's pool and split."""
        from finetune.records import ChunkPool
        from indexing.records import Chunk

        self.require("chunk")
        chunks = [Chunk(**row) for row in iter_jsonl(self.chunks)]
        return ChunkPool(chunks, read_json(self.split_file, {}))

    def tasks(self) -> list[Task]:
        """The brainstorm stage's retrieval tasks."""
        from finetune.records import Task

        self.require("brainstorm")
        return [Task.from_json(t) for t in read_json(self.tasks_file, [])]

    def pairs(self, path: Path | None = None) -> list[SyntheticPair]:
        """The generate stage's pairs, or those of another pairs file (``filtered``: the filter stage's)."""
        from finetune.records import SyntheticPair

        return [SyntheticPair.from_json(row) for row in iter_jsonl(path or self.pairs_file)]

    def examples(self) -> list[TrainingExample]:
        """The mine stage's training examples."""
        from finetune.records import TrainingExample

        self.require("mine")
        return [TrainingExample.from_json(row) for row in iter_jsonl(self.examples_file)]

    def checkpoint_dirs(self) -> list[Path]:
        """The train stage's complete checkpoints, oldest first (a ``.partial`` directory is an
        interrupted save)."""
        if not self.checkpoints.is_dir():
            return []
        found = [p for p in self.checkpoints.glob("step-*") if p.is_dir() and not p.name.endswith(".partial")
                 and (p / "adapter_config.json").exists()]
        return sorted(found, key=lambda p: int(p.name.split("-")[1]))

    # ledger
    ledger_path = _member("stages.json")

    def done(self) -> dict[str, dict]:
        return read_json(self.ledger_path, {})

    def is_done(self, stage: str) -> bool:
        return stage in self.done()

    def mark_done(self, stage: str, summary: dict) -> None:
        ledger = self.done()
        ledger[stage] = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **summary}
        write_json_atomic(self.ledger_path, ledger)

    def record_seconds(self, stage: str, seconds: float) -> None:
        """What a finished stage cost, beside its summary (the run's cost table reads it)."""
        ledger = self.done()
        if stage in ledger:
            ledger[stage]["seconds"] = round(seconds, 1)
            write_json_atomic(self.ledger_path, ledger)

    def stage_minutes(self) -> dict[str, float]:
        return {stage: round(entry["seconds"] / 60, 1) for stage, entry in self.done().items() if "seconds" in entry}

    def reset_from(self, stage: str) -> None:
        """Forget ``stage`` and every later one (their files are overwritten when they run)."""
        later = STAGES[STAGES.index(stage):]
        ledger = {k: v for k, v in self.done().items() if k not in later}
        write_json_atomic(self.ledger_path, ledger)

    def require(self, *stages: str) -> None:
        missing = [s for s in stages if not self.is_done(s)]
        if missing:
            raise RunDirError(f"{self.root}: stage(s) {', '.join(missing)} have not finished; run them first "
                              f"(e.g. --from-stage {missing[0]})")
