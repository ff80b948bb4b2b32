"""MTEB tasks built from the local data (and real MTEB tasks by name), ready to evaluate.

Local tasks are ordinary ``AbsTaskRetrieval`` / ``AbsTaskSTS`` subclasses whose ``load_data``
fills the split from records read here, so mteb's own evaluators (pytrec_eval for retrieval,
Spearman of cosine for STS) score them offline. A task's MTEB name carries its variant and a
fingerprint of its data files (``SciFact.q50-bm10-r100-s42.1a2b3c4d``): a result cached for one
sample or one download is never served for another.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import mteb
from datasets import Dataset
from mteb.abstasks import AbsTask
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.task_metadata import TaskMetadata

from corpora import BeirDataset, Document, is_beir_folder
from eval.errors import DatasetError, EvalError
from eval.localdata import (
    DEFAULT_RETRIEVAL_INSTRUCTION,
    LOCAL_DATASETS,
    RETRIEVAL,
    STS,
    LocalDataset,
    StsPairs,
    data_files,
    fingerprint,
    load_retrieval,
    load_sts,
    missing_folder_message,
)
from eval.sampling import PairSampling, RetrievalSampling, restrict, subsample_pairs, subsample_retrieval
from eval.suites import TaskSpec
from linqrag.files import write_json_atomic

MAIN_SCORE = {RETRIEVAL: "ndcg_at_10", STS: "cosine_spearman"}


def local_metadata(name: str, kind: str, prompt: str | dict | None, revision: str, description: str,
              license: str | None) -> TaskMetadata:
    return TaskMetadata(
        name=name,
        dataset={"path": f"linqrag-local/{name.split('.')[0]}", "revision": revision},
        description=description or name,
        type="Retrieval" if kind == RETRIEVAL else "STS",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score=MAIN_SCORE[kind],
        license=license,
        prompt=prompt,
    )


class _LocalTask:
    """What our tasks share: metadata per instance, records held in memory, loaded on demand.

    mteb's ``unload_data`` drops instance metadata (to restore a published task's); ours is the
    only one, and the task can be loaded again from its records, so unloading keeps it.
    """

    # Metadata is per instance; mteb skips classes whose metadata is None when it walks them.
    metadata = None

    def __init__(self, metadata: TaskMetadata, records, **kwargs) -> None:
        self.metadata = metadata
        self.records = records
        super().__init__(**kwargs)

    def build_dataset(self) -> dict:
        raise NotImplementedError

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        if not self.data_loaded:
            self.dataset = self.build_dataset()
            self.data_loaded = True

    def unload_data(self) -> None:
        self.dataset = None
        self.data_loaded = False


class LocalRetrievalTask(_LocalTask, AbsTaskRetrieval):
    """A BEIR folder from the data directory, full or subsampled (``records``: a ``BeirDataset``)."""

    metadata = None

    def build_dataset(self) -> dict:
        data: BeirDataset = self.records
        corpus = Dataset.from_dict({"id": [d.doc_id for d in data.corpus], "title": [d.title for d in data.corpus],
                                    "text": [d.text for d in data.corpus]})
        queries = Dataset.from_dict({"id": list(data.queries), "text": list(data.queries.values())})
        return {"default": {"test": {"corpus": corpus, "queries": queries,
                                     "relevant_docs": {q: dict(r) for q, r in data.qrels.items()},
                                     "top_ranked": None}}}


class LocalSTSTask(_LocalTask, AbsTaskSTS):
    """Sentence pairs with gold scores, full or sampled (``records``: ``StsPairs``); Spearman of cosine."""

    metadata = None

    def __init__(self, metadata: TaskMetadata, pairs: StsPairs, **kwargs) -> None:
        self.min_score, self.max_score = pairs.min_score, pairs.max_score
        super().__init__(metadata, pairs, **kwargs)

    def build_dataset(self) -> dict:
        p: StsPairs = self.records
        return {"test": Dataset.from_dict({"sentence1": p.sentence1, "sentence2": p.sentence2, "score": p.scores})}


@dataclass
class PreparedTask:
    """A task ready for ``mteb.evaluate``, with what it holds (for the report)."""

    spec: TaskSpec
    kind: str
    task: AbsTask
    size: dict = field(default_factory=dict)

    @property
    def mteb_name(self) -> str:
        return self.task.metadata.name

    @property
    def main_metric(self) -> str:
        return self.task.metadata.main_score


def find_local(name: str, data_root: Path) -> tuple[LocalDataset, Path] | None:
    """A named local set, a BEIR folder under ``data_root`` or a BEIR folder path; None if neither."""
    if name in LOCAL_DATASETS:
        local = LOCAL_DATASETS[name]
        return local, data_root / local.folder
    for folder in (data_root / name, Path(name).expanduser()):
        if folder.is_dir() and is_beir_folder(folder):
            known = next((d for d in LOCAL_DATASETS.values() if d.folder == folder.name), None)
            if known is not None:
                return known, folder
            return LocalDataset(folder.name, str(folder), RETRIEVAL, DEFAULT_RETRIEVAL_INSTRUCTION,
                                description=f"BEIR folder {folder}"), folder
    if "/" in name or Path(name).expanduser().exists():
        raise DatasetError(f"{name} is not a BEIR folder: it needs corpus.jsonl[.gz], queries.jsonl and qrels/test.tsv")
    return None


def sampled_retrieval(data: BeirDataset, sampling: RetrievalSampling, fp: str, instruction: str | None,
                      cache: Path | None, show_progress: bool = False) -> BeirDataset:
    """The light set of ``data``, built once per data fingerprint and sampling and cached as id lists
    (the dense pool encodes the full corpus once; every later checkpoint reuses the same set)."""
    if cache is None:
        return subsample_retrieval(data, sampling, show_progress, instruction)
    path = Path(cache) / f"{data.name}.{sampling.key}.{fp}.json"
    if path.exists():
        try:
            ids = json.loads(path.read_text(encoding="utf-8"))
            return restrict(data, ids["queries"], set(ids["documents"]))
        except (ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    light = subsample_retrieval(data, sampling, show_progress, instruction)
    write_json_atomic(path, {"queries": list(light.queries), "documents": [d.doc_id for d in light.corpus]},
                      indent=None)
    return light


def prepare_task(spec: TaskSpec, data_root: Path, show_progress: bool = False,
                 sample_cache: Path | None = None) -> PreparedTask:
    """Load (and sample) the data of one task and wrap it as an mteb task; ``sample_cache`` keeps light sets."""
    found = find_local(spec.name, data_root)
    if found is None:
        return prepare_mteb_task(spec, data_root, show_progress)
    local, folder = found
    if not folder.is_dir():
        raise DatasetError(missing_folder_message(folder, f"dataset for task {spec.name}"))
    variant = spec.sampling.key if spec.sampling is not None else "full"
    if local.kind == RETRIEVAL:
        if spec.sampling is not None and not isinstance(spec.sampling, RetrievalSampling):
            raise EvalError(f"{spec.name} is a retrieval task; it takes retrieval sampling")
        data = load_retrieval(folder, local.split)
        fp = fingerprint(data_files(folder, RETRIEVAL, local.split))
        if spec.sampling is not None:
            data = sampled_retrieval(data, spec.sampling, fp, local.instruction, sample_cache, show_progress)
        meta = local_metadata(f"{local.name}.{variant}.{fp}", RETRIEVAL, {"query": local.instruction}, fp,
                         local.description, local.license)
        size = {"queries": len(data.queries), "documents": len(data.corpus)}
        return PreparedTask(spec, RETRIEVAL, LocalRetrievalTask(meta, data), size)
    if spec.sampling is not None and not isinstance(spec.sampling, PairSampling):
        raise EvalError(f"{spec.name} is an STS task; it takes pair sampling")
    pairs = load_sts(folder, local.name)
    fp = fingerprint(data_files(folder, STS))
    if spec.sampling is not None:
        pairs = subsample_pairs(pairs, spec.sampling)
    meta = local_metadata(f"{local.name}.{variant}.{fp}", STS, local.instruction, fp, local.description, local.license)
    return PreparedTask(spec, STS, LocalSTSTask(meta, pairs), {"pairs": len(pairs)})


def prepare_mteb_task(spec: TaskSpec, data_root: Path, show_progress: bool = False) -> PreparedTask:
    """A real MTEB task by name; its data comes from the hub (or the Hugging Face cache)."""
    try:
        task = mteb.get_task(spec.name)
    except KeyError:
        raise EvalError(
            f"unknown task {spec.name!r}: not a local set ({', '.join(LOCAL_DATASETS)}), not a BEIR folder under "
            f"{data_root}, and not an MTEB task or benchmark name"
        ) from None
    kind = {"Retrieval": RETRIEVAL, "STS": STS}.get(task.metadata.type, task.metadata.type.lower())
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        task.load_data()
    except Exception as error:  # noqa: BLE001 -- datasets raises many kinds: connection, offline, no cache
        hint = " The hub is offline here: run with LINQRAG_ONLINE=1 to download it." if offline else ""
        raise DatasetError(f"MTEB task {spec.name} could not be loaded ({error.__class__.__name__}: "
                           f"{str(error).splitlines()[0][:200] if str(error) else ''}).{hint}") from None
    if spec.sampling is not None:
        if kind != RETRIEVAL or not isinstance(spec.sampling, RetrievalSampling):
            raise EvalError(f"streamlined sampling of MTEB task {spec.name} is only defined for retrieval tasks")
        sample_loaded_retrieval(task, spec.sampling, show_progress)
        task.metadata = task.metadata.model_copy(update={"name": f"{task.metadata.name}.{spec.sampling.key}"})
    return PreparedTask(spec, kind, task, {})


def sample_loaded_retrieval(task, sampling: RetrievalSampling, show_progress: bool = False) -> None:
    """Replace each split of a loaded mteb retrieval task by its light version, in place."""
    for subset, splits in task.dataset.items():
        for split, data in splits.items():
            corpus = data["corpus"]
            titles = corpus["title"] if "title" in corpus.column_names else [""] * len(corpus)
            docs = [Document(str(i), t, ti or "")
                    for i, t, ti in zip(corpus["id"], corpus["text"], titles, strict=False)]
            queries = dict(zip(map(str, data["queries"]["id"]), data["queries"]["text"], strict=False))
            light = subsample_retrieval(BeirDataset(f"{task.metadata.name}/{subset}", docs, queries,
                                                    data["relevant_docs"], split), sampling, show_progress)
            kept_docs = {d.doc_id for d in light.corpus}
            data["corpus"] = corpus.select([i for i, d in enumerate(corpus["id"]) if str(d) in kept_docs])
            data["queries"] = data["queries"].select(
                [i for i, q in enumerate(data["queries"]["id"]) if str(q) in light.queries])
            data["relevant_docs"] = light.qrels
            if data.get("top_ranked") is not None:
                data["top_ranked"] = {q: v for q, v in data["top_ranked"].items() if q in light.queries}
