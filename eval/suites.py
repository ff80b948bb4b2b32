"""Suites: which tasks a checkpoint is scored on, whether each is full or sampled, and the precision.

``streamlined`` (the default) is Linq's recipe on this project's data: every task on a light set
(sampled queries, a corpus of judged + BM25 + dense-pooled + random documents, sampled STS pairs,
fixed seed) and
large decoders in 4-bit NF4 where a GPU runs them (``auto``: the presets marked for it, Linq-Embed-Mistral
and E5-mistral, on CUDA). Small decoders stay unquantised: NF4 moved SmolLM2-135M's AILAStatutes score
from 0.061 to 0.114 and its rank by two places, and on a CPU it saves no time (bench/RESULTS.md). ``full`` is the same
tasks complete, decoders unquantised: the reference the
streamlined suite must rank checkpoints like. AILACasedocs (2,914 judgments of ~20k characters) is
left out of both by default because it alone costs more than the rest on a CPU; name it to run it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from embedder.spec import QUANTIZATION_CHOICES
from eval.errors import EvalError
from eval.localdata import LOCAL_DATASETS, STS
from eval.sampling import PairSampling, RetrievalSampling

Sampling = RetrievalSampling | PairSampling


@dataclass(frozen=True)
class TaskSpec:
    """One task of a suite: a local set, a BEIR folder or an MTEB task name; full when ``sampling`` is None."""

    name: str
    sampling: Sampling | None = None

    @property
    def label(self) -> str:
        return self.name if self.sampling is None else f"{self.name}[{self.sampling.key}]"

    def to_dict(self) -> dict:
        out: dict = {"name": self.name}
        if isinstance(self.sampling, RetrievalSampling):
            out["retrieval_sampling"] = vars(self.sampling).copy()
        elif isinstance(self.sampling, PairSampling):
            out["pair_sampling"] = vars(self.sampling).copy()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TaskSpec:
        if "retrieval_sampling" in data:
            return cls(data["name"], RetrievalSampling(**data["retrieval_sampling"]))
        if "pair_sampling" in data:
            return cls(data["name"], PairSampling(**data["pair_sampling"]))
        return cls(data["name"])


@dataclass(frozen=True)
class Suite:
    """A named list of tasks plus how decoders are loaded (``nf4``: 4-bit; ``auto``: 4-bit for the large presets on
    CUDA)."""

    name: str
    tasks: tuple[TaskSpec, ...]
    decoder_quantization: str = "none"
    description: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        return {"name": self.name, "decoder_quantization": self.decoder_quantization,
                "description": self.description, "tasks": [t.to_dict() for t in self.tasks]}

    @classmethod
    def from_dict(cls, data: dict) -> Suite:
        return cls(data["name"], tuple(TaskSpec.from_dict(t) for t in data["tasks"]),
                   data.get("decoder_quantization", "none"), data.get("description", ""))


#: The tasks of the named suites (local sets, so they run offline).
SUITE_TASKS = ("SciFact", "NFCorpus", "AILAStatutes", "STSBenchmark", "SICK-R")

#: Light-set sizes per task. NFCorpus judges ~38 documents per query, so it keeps fewer queries;
#: AILAStatutes' corpus is small already, its 50 long queries are what costs.
STREAMLINED_SAMPLING: dict[str, Sampling] = {
    "SciFact": RetrievalSampling(max_queries=50, bm25_depth=10, random_docs=100),
    "NFCorpus": RetrievalSampling(max_queries=25, bm25_depth=10, random_docs=100),
    # all 50 queries: 25 of them flipped a near-tie the whole set resolves, and the corpus is tiny anyway
    "AILAStatutes": RetrievalSampling(max_queries=50, bm25_depth=10, random_docs=50),
    "AILACasedocs": RetrievalSampling(max_queries=25, bm25_depth=10, random_docs=50),
    "STSBenchmark": PairSampling(max_pairs=500),
    "SICK-R": PairSampling(max_pairs=500),
}

DEFAULT_SUITE = "streamlined"

SUITES: dict[str, Suite] = {
    "streamlined": Suite(
        "streamlined",
        tuple(TaskSpec(n, STREAMLINED_SAMPLING[n]) for n in SUITE_TASKS),
        decoder_quantization="auto",
        description="light sets (sampled queries; judged + BM25 top-10 + MiniLM top-10 + random docs; "
        "500 STS pairs), seed 42, large decoders in 4-bit NF4 on a GPU",
    ),
    "full": Suite(
        "full",
        tuple(TaskSpec(n) for n in SUITE_TASKS),
        decoder_quantization="none",
        description="complete local sets (SciFact, NFCorpus, AILAStatutes test; STS-B test; all SICK pairs), "
        "decoders unquantised",
    ),
}


def streamlined_sampling(name: str, kind: str | None = None) -> Sampling:
    """The light-set sizes for ``name`` (a known task, else the defaults for its kind)."""
    if name in STREAMLINED_SAMPLING:
        return STREAMLINED_SAMPLING[name]
    local = LOCAL_DATASETS.get(name)
    return PairSampling() if (kind or (local.kind if local else None)) == STS else RetrievalSampling()


def parse_task(arg: str) -> list[TaskSpec]:
    """``NAME`` (full) or ``NAME:streamlined``; an MTEB benchmark name expands to its tasks."""
    name, _, variant = arg.partition(":")
    if variant not in ("", "full", "streamlined"):
        raise EvalError(f"task {arg!r}: the part after ':' must be 'full' or 'streamlined'")
    names = [name]
    if name not in LOCAL_DATASETS and not _is_path_like(name):
        names = benchmark_tasks(name) or names
    return [TaskSpec(n, streamlined_sampling(n) if variant == "streamlined" else None) for n in names]


def _is_path_like(name: str) -> bool:
    from pathlib import Path

    from linqrag.settings import data_dir

    return "/" in name or (data_dir() / name).is_dir() or Path(name).is_dir()


def benchmark_tasks(name: str) -> list[str]:
    """Task names of an MTEB benchmark (``NanoBEIR``, ``MTEB(eng, v2)``), or [] if it is not one."""
    import mteb

    try:
        benchmark = mteb.get_benchmark(name)
    except (KeyError, ValueError):
        return []
    return [t.metadata.name for t in benchmark.tasks]


def resolve_suite(args: str | list[str] | Suite, quantization: str | None = None) -> Suite:
    """A suite from a name (``streamlined``, ``full``) or a list of task arguments (see :func:`parse_task`)."""
    if isinstance(args, Suite):
        suite = args
    else:
        args = [args] if isinstance(args, str) else list(args)
        if not args:
            raise EvalError("no suite or task given")
        if len(args) == 1 and args[0] in SUITES:
            suite = SUITES[args[0]]
        else:
            unknown_suites = [a for a in args if a in ("streamlined", "full")]
            if unknown_suites:
                raise EvalError("give either one suite name or a list of tasks, not both")
            specs = tuple(s for a in args for s in parse_task(a))
            label = "+".join(a.replace(":", "-") for a in args)
            if len(label) > 60 or any(c in label for c in "/\\ ()"):
                label = "tasks-" + hashlib.sha256(label.encode()).hexdigest()[:8]
            any_sampled = any(s.sampling is not None for s in specs)
            suite = Suite(label, specs, "auto" if any_sampled else "none", "tasks named on the command line")
    if quantization is not None:
        if quantization not in QUANTIZATION_CHOICES:
            raise EvalError(f"quantization must be one of {QUANTIZATION_CHOICES}")
        suite = Suite(suite.name, suite.tasks, quantization, suite.description)
    return suite
