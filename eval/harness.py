"""``score``: load a checkpoint, run a suite's tasks through mteb, write the results beside it.

Caching is explicit: mteb's result cache lives in ``<linqrag cache>/mteb-results`` (never mteb's
global default), keyed by the model's revision, which is a digest of the embedder signature (base
weights, adapter content digest, dtype, templates, max length), and by the task name, which
carries the sample and a data fingerprint. A new or retrained adapter therefore always misses.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mteb

from embedder import adapter_base, load_embedder
from embedder.presets import get_preset
from eval.baselines import BM25_NAME, BM25Search
from eval.encoder import MtebEncoder, model_revision
from eval.errors import EvalError
from eval.localdata import RETRIEVAL, STS
from eval.records import RunRecord, TaskScore
from eval.suites import DEFAULT_SUITE, Suite, resolve_suite
from eval.tasks import PreparedTask, prepare_task
from linqrag.settings import apply_offline_env, cache_dir, data_dir

log = logging.getLogger(__name__)

#: The metrics kept in the results besides the main score.
KEPT_METRICS = {
    RETRIEVAL: ("ndcg_at_1", "ndcg_at_10", "ndcg_at_100", "recall_at_10", "recall_at_100", "map_at_10", "mrr_at_10"),
    STS: ("cosine_spearman", "cosine_pearson", "spearman", "pearson"),
}


def default_cache_path() -> Path:
    return cache_dir() / "mteb-results"


@dataclass
class ScoreConfig:
    """What to score and how; ``score(ScoreConfig(...))`` is what the CLI runs."""

    embedder: str | None = "minilm"
    adapter: Path | None = None
    suite: Suite | str | list[str] = DEFAULT_SUITE
    #: ``None``: decoders as the suite says (``nf4`` in streamlined), encoders unquantised.
    quantization: str | None = None
    max_length: int | None = None
    batch_size: int = 32
    #: how an encoder runs (embedder.onnx.BACKEND_CHOICES); torch by default, so scores stay comparable
    backend: str = "torch"
    #: Where the results JSON goes; default: the adapter directory, else ``<cache>/eval/runs/<label>``.
    out_dir: Path | None = None
    #: mteb result cache folder; ``None`` disables the cache (every task runs).
    cache: Path | None = field(default_factory=default_cache_path)
    overwrite: bool = False
    #: Where light sets are kept once built (id lists; None: rebuild every time).
    sample_cache: Path | None = field(default_factory=lambda: cache_dir() / "eval" / "samples")
    data_root: Path | None = None
    show_progress: bool = True
    save_predictions: bool = False
    write: bool = True
    #: torch CPU threads (None: torch's default). On a shared 2-core machine 1 is faster than 2: the
    #: second OpenMP thread waits at every barrier for a core another process holds.
    threads: int | None = None
    #: Called with each task's score as it finishes (the CLI prints a line).
    on_task: Callable[[TaskScore], None] | None = None


@dataclass
class LoadedModel:
    """The mteb-facing model and what identifies it in the results."""

    model: object
    label: str
    embedder: str
    signature: str
    revision: str
    quantization: str
    max_length: int | None

    @property
    def is_bm25(self) -> bool:
        return self.embedder == BM25_NAME


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "model"


def load_model(config: ScoreConfig, suite: Suite) -> LoadedModel:
    """BM25, or the embedder (plus adapter) with the suite's decoder precision."""
    if config.embedder == BM25_NAME:
        if config.adapter:
            raise EvalError("bm25 takes no adapter")
        model = BM25Search(show_progress=config.show_progress)
        meta = model.mteb_model_meta
        return LoadedModel(model, BM25_NAME, BM25_NAME, meta.name, meta.revision, "none", None)
    wanted = config.quantization or suite.decoder_quantization
    name = config.embedder or (adapter_base(Path(config.adapter)) if config.adapter else None)
    spec = get_preset(name) if name else None
    first = wanted if (spec is not None and spec.is_decoder) else "none" if spec is not None else "auto"
    emb = load_embedder(config.embedder, adapter=config.adapter, quantization=first,
                        max_length=config.max_length, batch_size=config.batch_size, backend=config.backend)
    if spec is None and emb.spec.is_decoder and first != wanted:
        emb = load_embedder(config.embedder, adapter=config.adapter, quantization=wanted,
                            max_length=config.max_length, batch_size=config.batch_size, backend=config.backend)
    label = emb.name + (f"+{Path(config.adapter).name}" if config.adapter else "")
    encoder = MtebEncoder(emb, batch_size=config.batch_size, show_progress=config.show_progress)
    return LoadedModel(encoder, label, emb.name, emb.signature, model_revision(emb), emb.dtype_name, emb.max_length)


def _versions() -> dict[str, str]:
    out = {}
    for package in ("linqrag", "mteb", "torch", "transformers", "bm25s"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def run_task(loaded: LoadedModel, prepared: PreparedTask, config: ScoreConfig,
             cache: mteb.ResultCache | None, prediction_folder: Path | None) -> TaskScore:
    """One task through ``mteb.evaluate``; says whether the score came from the cache."""
    name = prepared.spec.name
    if loaded.is_bm25 and prepared.kind != RETRIEVAL:
        return TaskScore(name, prepared.mteb_name, prepared.kind, prepared.main_metric, None, size=prepared.size,
                         note="n/a: BM25 ranks documents, it has no vectors to compare sentences")
    meta = loaded.model.mteb_model_meta
    cached = bool(cache is not None and not config.overwrite
                  and cache.load_task_result(prepared.mteb_name, meta) is not None)
    start = time.perf_counter()
    result = mteb.evaluate(
        loaded.model,
        prepared.task,
        cache=cache,
        overwrite_strategy="always" if config.overwrite else "only-missing",
        encode_kwargs={"batch_size": config.batch_size, "show_progress_bar": config.show_progress},
        show_progress_bar=config.show_progress,
        prediction_folder=prediction_folder,
    )
    seconds = time.perf_counter() - start
    task_result = result.task_results[0]
    scores = task_result.scores["test"][0]
    kept = {k: round(float(scores[k]), 6) for k in KEPT_METRICS.get(prepared.kind, ()) if k in scores}
    return TaskScore(name, prepared.mteb_name, prepared.kind, prepared.main_metric,
                     round(float(scores["main_score"]), 6),
                     kept, prepared.size, seconds, cached)


def default_out_dir(config: ScoreConfig, label: str) -> Path:
    if config.adapter:
        return Path(config.adapter)
    return cache_dir() / "eval" / "runs" / _slug(label)


def score(config: ScoreConfig) -> RunRecord:
    """Score one model on one suite; returns the record (and writes it unless ``write=False``)."""
    apply_offline_env()
    started = time.perf_counter()
    suite = resolve_suite(config.suite, config.quantization)
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    if not config.show_progress:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    data_root = Path(config.data_root) if config.data_root else data_dir()
    load_start = time.perf_counter()
    loaded = load_model(config, suite)
    load_seconds = time.perf_counter() - load_start
    cache = mteb.ResultCache(config.cache) if config.cache is not None else None
    out_dir = Path(config.out_dir) if config.out_dir else default_out_dir(config, loaded.label)
    predictions = out_dir / f"predictions-{suite.name}" if config.save_predictions else None
    scores = []
    for spec in suite.tasks:
        prep_start = time.perf_counter()
        prepared = prepare_task(spec, data_root, show_progress=config.show_progress, sample_cache=config.sample_cache)
        task_score = run_task(loaded, prepared, config, cache, predictions)
        task_score.seconds = time.perf_counter() - prep_start
        scores.append(task_score)
        if config.on_task is not None:
            config.on_task(task_score)
    record = RunRecord(
        label=loaded.label, embedder=loaded.embedder, adapter=str(config.adapter) if config.adapter else None,
        signature=loaded.signature, revision=loaded.revision, suite=suite, quantization=loaded.quantization,
        max_length=loaded.max_length, tasks=scores, wall_seconds=time.perf_counter() - started,
        load_seconds=load_seconds, created=time.strftime("%Y-%m-%dT%H:%M:%S"), versions=_versions(),
        data_root=str(data_root),
    )
    if config.write:
        record.save(out_dir)
    return record
