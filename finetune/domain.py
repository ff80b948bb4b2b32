"""``python -m finetune.domain --corpus DIR`` (or ``python -m finetune domain ...``): adapt an embedder
to your documents.

Chunk -> brainstorm tasks -> generate queries -> filter -> mine hard negatives -> LoRA training
-> evaluate checkpoints -> report. Each stage writes into the run directory and is skipped when
it has finished, so rerunning the same command resumes a killed run; ``--from-stage`` redoes a
stage and everything after it. The flags are in :mod:`finetune.cli`; see ``--help`` and
docs/domain-adaptation.md.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from finetune.config import FIELD_STAGE, DomainConfig
from finetune.rundir import STAGES, RunDir, RunDirError, read_json
from linqrag.files import write_json_atomic

if TYPE_CHECKING:  # torch and the models load only when a run starts
    from finetune.budget import Plan
    from finetune.distributed import Ranks
    from finetune.llm import CachedGenerator
    from finetune.teacher import Teacher

log = logging.getLogger("finetune")


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    best_checkpoint: str | None
    metric: str
    base_score: float | None
    best_score: float | None
    gain: float | None
    heldout_queries: int
    recommended: str | None = None  #: the checkpoint to use, or None: keep the base
    verdict: str = ""

    def summary_line(self) -> str:
        if not self.best_checkpoint:
            return f"done: no checkpoint evaluated; see {self.run_dir / 'report.md'}"
        use = f"use {self.recommended}" if self.recommended else "recommended: keep the base embedder"
        return (f"done: best checkpoint {self.best_checkpoint} | {self.metric} on {self.heldout_queries} held-out "
                f"queries: base {self.base_score:.4f} -> {self.best_score:.4f} ({self.gain:+.4f}) | {self.verdict} | "
                f"{use} | report {self.run_dir / 'report.md'}")


def default_run_dir(corpus: str, base: str) -> Path:
    try:
        from linqrag.settings import runs_dir
    except ImportError:  # older checkouts
        def runs_dir() -> Path:
            return Path("runs")
    name = Path(corpus.rstrip("/")).name or "corpus"
    return runs_dir() / f"{name}-{Path(base).name}"


def resolve_config(overrides: dict, config_file: str | None = None, from_stage: str | None = None) -> DomainConfig:
    """defaults < the run's saved config < config file < ``overrides``; refuses silent changes to
    settings that finished stages were made with."""
    file_values = DomainConfig.from_file(config_file) if config_file else {}
    wanted = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    corpus = wanted.get("corpus", "")
    base = wanted.get("base", DomainConfig.base)
    run_dir = wanted.get("run_dir") or (str(default_run_dir(corpus, base)) if corpus else "")
    if not run_dir:
        raise RunDirError("give --corpus DIR (and optionally --run-dir), or --run-dir of an existing run")
    saved = read_json(Path(run_dir) / "config.json", {})
    merged = DomainConfig(**{**saved, **wanted, "run_dir": run_dir})
    if saved:
        done = RunDir(run_dir).done()
        as_saved = json.loads(json.dumps(merged.to_json()))  # tuples read back as lists
        changed = [k for k, v in as_saved.items() if k in FIELD_STAGE and saved.get(k) != v]
        for key in sorted(changed, key=lambda k: STAGES.index(FIELD_STAGE[k])):
            stage = FIELD_STAGE[key]
            redo_from = STAGES.index(from_stage) if from_stage else len(STAGES)
            if stage in done and redo_from > STAGES.index(stage):
                made = (f"made with {key}={saved[key]!r}" if key in saved
                        else f"made before the setting {key} existed")
                raise RunDirError(
                    f"{run_dir} was {made}; you asked for {getattr(merged, key)!r}. "
                    f"Rerun with --from-stage {stage} (stages from there are redone; cached LLM answers are "
                    "reused) or use another --run-dir.")
    return merged


@dataclass
class StageContext:
    """What the stages of one run share: its settings, directory, generator and (lazily) teacher."""

    config: DomainConfig
    run: RunDir
    llm: CachedGenerator
    where: Ranks
    show_progress: bool = True
    made_here: bool = False  #: the run directory did not exist before this run
    fresh_training: bool = False  #: ``--from-stage`` at or before train: earlier checkpoints are moved aside
    plan: Plan | None = None  #: the budget's plan (``--budget``): the train stage keeps to its deadline
    _teacher: Teacher | None = None

    def teacher(self) -> Teacher:
        """One teacher for the filter and mine stages, loaded on first use."""
        if self._teacher is None:
            from finetune.teacher import Teacher

            self._teacher = Teacher(self.config.teacher)
        return self._teacher

    def drop_teacher(self) -> None:
        self._teacher = None


@dataclass(frozen=True)
class Stage:
    """One row of the pipeline: the stage's name (one of ``STAGES``), the function that runs it and
    returns its summary, and the summary's tables (dicts) shown in its log line beside the scalars."""

    name: str
    run: Callable[[StageContext], dict]
    reports: tuple[str, ...] = ()


def _chunk(ctx: StageContext) -> dict:
    from corpora import CorpusError
    from finetune.chunk import run_chunk_stage

    try:
        return run_chunk_stage(ctx.config, ctx.run, ctx.show_progress)
    except CorpusError:
        if ctx.made_here:  # a refused corpus leaves no half-made run directory behind
            shutil.rmtree(ctx.run.root, ignore_errors=True)
        raise


def _brainstorm(ctx: StageContext) -> dict:
    from finetune.brainstorm import run_brainstorm_stage

    return run_brainstorm_stage(ctx.config, ctx.run, ctx.llm, ctx.show_progress)


def _generate(ctx: StageContext) -> dict:
    from finetune.generate import run_generate_stage

    return run_generate_stage(ctx.config, ctx.run, ctx.run.tasks(), ctx.llm, ctx.show_progress)


def _filter(ctx: StageContext) -> dict:
    from finetune.filters import run_filter_stage

    teacher = ctx.teacher() if ctx.config.teacher_top_k > 0 else None
    return run_filter_stage(ctx.config, ctx.run, teacher, ctx.show_progress)


def _mine(ctx: StageContext) -> dict:
    from finetune.mining import run_mine_stage

    return run_mine_stage(ctx.config, ctx.run, ctx.teacher(), ctx.show_progress)


def _train(ctx: StageContext) -> dict:
    from finetune.train import remove_partial_checkpoints, run_train_stage

    ctx.drop_teacher()  # free the teacher's memory before loading the base for training
    if ctx.where.main:
        remove_partial_checkpoints(ctx.run)
    order = [t.task_id for t in ctx.run.tasks()]
    stop_at = None
    if ctx.plan is not None:
        from finetune.budget import train_deadline_seconds

        spent = sum(entry.get("seconds", 0.0) for entry in ctx.run.done().values())
        spent += ctx.plan.rates.probe_seconds if ctx.plan.rates else 0.0
        stop_at = time.perf_counter() + train_deadline_seconds(ctx.plan, spent)
    return run_train_stage(ctx.config, ctx.run, order, fresh=ctx.fresh_training, show_progress=ctx.show_progress,
                           stop_at=stop_at)


def _evaluate(ctx: StageContext) -> dict:
    from finetune.evaluate import run_evaluate_stage

    return run_evaluate_stage(ctx.config, ctx.run, ctx.show_progress)


def _report(ctx: StageContext) -> dict:
    from finetune.report import run_report_stage

    return run_report_stage(ctx.config, ctx.run)


#: The pipeline, in ``STAGES`` order: adding a stage is one row here and its name in ``STAGES``.
STAGE_TABLE: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("chunk", _chunk),
    Stage("brainstorm", _brainstorm),
    Stage("generate", _generate, reports=("rejected_by_reason",)),
    Stage("filter", _filter, reports=("removed_by_rule",)),
    Stage("mine", _mine),
    Stage("train", _train),
    Stage("evaluate", _evaluate),
    Stage("report", _report),
)}
if tuple(STAGE_TABLE) != STAGES:
    raise RuntimeError(f"STAGE_TABLE {tuple(STAGE_TABLE)} does not match STAGES {STAGES}")


def _open_run(config: DomainConfig, from_stage: str | None, show_progress: bool,
              plan: Plan | None = None) -> StageContext:
    """The run directory (reset from ``from_stage``, config saved) and the generator, on every rank."""
    from finetune.distributed import barrier, ranks
    from finetune.llm import open_generator

    where = ranks()  # torchrun: training on every rank, every other stage on rank 0 alone
    root = Path(config.run_dir)
    # a directory holding only the budget's plan was made by this run's planning (``plan_run``)
    made_here = not root.exists() or (plan is not None and {p.name for p in root.iterdir()} <= {"plan.json"})
    barrier(where)  # every rank has looked before rank 0 makes it
    run = RunDir(config.run_dir)
    if from_stage:
        if from_stage not in STAGES:
            raise RunDirError(f"--from-stage must be one of {', '.join(STAGES)}")
        if where.main:
            run.reset_from(from_stage)
    if where.main:
        write_json_atomic(run.path("config.json"), config.to_json())
    barrier(where)
    cache = Path(config.generation_cache) if config.generation_cache else run.generation_cache
    fresh_training = from_stage is not None and STAGES.index(from_stage) <= STAGES.index("train")
    return StageContext(config, run, open_generator(config, cache), where, show_progress, made_here, fresh_training,
                        plan)


def _run_stages(ctx: StageContext) -> None:
    """Every stage not in the ledger yet, in order; rank 0 alone except for training."""
    from finetune.distributed import barrier
    from linqrag.generation import GenerationError, GeneratorUnavailable

    run, where = ctx.run, ctx.where
    for stage in STAGE_TABLE.values():
        if run.is_done(stage.name):
            log.info("stage %s: done earlier, skipped", stage.name)
            continue
        if not where.main and stage.name != "train":
            barrier(where)  # rank 0 runs it; this rank waits, then reads its files
            continue
        t0 = time.perf_counter()
        log.warning("stage %s ...", stage.name)
        try:
            out = stage.run(ctx)
        except (GeneratorUnavailable, GenerationError) as error:  # the run dir is kept; a rerun resumes here
            raise type(error)(f"stage {stage.name}: {error}") from error
        seconds = time.perf_counter() - t0
        barrier(where)
        if where.main:
            run.record_seconds(stage.name, seconds)
            log.warning("stage %s finished in %.0f s: %s", stage.name, seconds, _short(out, stage.reports))


def _result(config: DomainConfig, run: RunDir) -> RunResult:
    evaluation = read_json(run.path("evaluation.json"), {})
    rows, best = evaluation.get("rows", []), evaluation.get("best")
    metric = evaluation.get("metric", f"ndcg@{config.eval_k}")
    return RunResult(
        run_dir=run.root, best_checkpoint=best.get("path") if best else None, metric=metric,
        base_score=rows[0][metric] if rows else None, best_score=best[metric] if best else None,
        gain=evaluation.get("gain"), heldout_queries=evaluation.get("heldout_queries", 0),
        recommended=evaluation.get("recommended"), verdict=evaluation.get("verdict", {}).get("reason", ""),
    )


def run_domain_adaptation(config: DomainConfig, from_stage: str | None = None, show_progress: bool = True,
                          plan: Plan | None = None) -> RunResult:
    """Run every unfinished stage (or everything from ``from_stage``) and return the outcome; with a
    budget's ``plan`` (:func:`plan_run`), training stops at the budget's deadline."""
    from linqrag.settings import apply_offline_env

    apply_offline_env()
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    ctx = _open_run(config, from_stage, show_progress, plan)
    _run_stages(ctx)
    minutes = ctx.run.stage_minutes()
    if plan is not None and plan.rates and plan.rates.probe_seconds:
        minutes = {"measure": round(plan.rates.probe_seconds / 60, 1), **minutes}
    total = sum(minutes.values())
    log.warning("cost (minutes per stage on this machine): %s; total %.1f%s",
                ", ".join(f"{k} {v}" for k, v in minutes.items()), total,
                f" (budget {plan.budget_minutes:g}, planned {plan.expected_minutes:.1f})" if plan else "")
    return _result(config, ctx.run)


def plan_run(overrides: dict, config_file: str | None = None, from_stage: str | None = None,
             show: Callable[[str], None] | None = print) -> tuple[DomainConfig, Plan | None]:
    """The resolved config and, when it has a budget, the plan that sized it (:mod:`finetune.budget`).

    Sizes the user gave (flags or the config file) are kept. A run begun without a budget keeps the
    sizes it was made with, and under torchrun the sizes are as set (plan on one process first).
    """
    from finetune.budget import PLANNED, plan_for
    from finetune.distributed import ranks

    config = resolve_config(overrides, config_file, from_stage)
    if not config.budget:
        return config, None
    run = Path(config.run_dir)
    if ranks().world > 1:
        log.warning("--budget is planned on one process; under torchrun the sizes are as set")
        return config, None
    from finetune.budget import PLAN_FILE

    if read_json(run / "stages.json", {}) and not (run / PLAN_FILE).exists() and from_stage != "chunk":
        log.warning("%s was begun without a budget: it keeps its sizes", run)
        return config, None
    file_values = DomainConfig.from_file(config_file) if config_file else {}
    given = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    explicit = {k: int(given[k]) for k in PLANNED if given.get(k) is not None}
    from linqrag.generation import GenerationError, GeneratorUnavailable

    try:
        plan = plan_for(config, explicit)
    except (GeneratorUnavailable, GenerationError) as error:  # before any stage: nothing to resume
        raise type(error)(f"measuring this machine for --budget ({error}); --budget 0 skips the measuring") \
            from error
    if show:
        show(plan.describe())
    config = resolve_config({**overrides, **plan.settings()}, config_file, from_stage)
    return config, plan


def _short(summary: dict, tables: tuple[str, ...] = ()) -> str:
    """A summary's scalars and its ``tables`` (see :class:`Stage`), cut to 400 characters."""
    keep = {k: v for k, v in summary.items() if not isinstance(v, (list, dict)) or k in tables}
    text = ", ".join(f"{k}={v}" for k, v in keep.items())
    return text[:400]


if __name__ == "__main__":  # ``python -m finetune.domain``: the flags live in finetune.cli
    from finetune.cli import domain_main

    sys.exit(domain_main())
