"""Which embedders the Index and Models pages offer: the presets, ``auto`` and fine-tuned
checkpoints, each with why it cannot run on this machine (None: it can)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from embedder import PRESETS, unavailable_reason

AUTO = "auto"  # picks what runs here, so it is never unavailable


@dataclass(frozen=True)
class EmbedderChoices:
    """Options in the order offered (small presets first), their labels and the reasons they cannot run."""

    options: list[str]
    labels: dict[str, str]
    reasons: dict[str, str | None]

    def label(self, option: str) -> str:
        return self.labels.get(option, option) + ("" if self.reasons.get(option) is None else " (cannot run here)")

    def is_checkpoint(self, option: str) -> bool:
        return option not in PRESETS and option != AUTO

    def refusal(self, option: str) -> str | None:
        """The warning to show for an option that cannot run here."""
        reason = self.reasons.get(option)
        if reason is None:
            return None
        return f"{self.labels.get(option, option)} cannot run on this machine: {reason.rstrip('.')}."

    @property
    def first_runnable(self) -> int:
        return next((i for i, o in enumerate(self.options) if self.reasons.get(o) is None), 0)


def embedder_choices(runs: Sequence, with_auto: bool = False) -> EmbedderChoices:
    """``runs``: finished adaptation runs (``finetune.catalog.AdaptedRun``); a checkpoint runs
    wherever its base preset runs."""
    reasons: dict[str, str | None] = {name: unavailable_reason(name) for name in PRESETS}
    small = [name for name, spec in PRESETS.items() if not spec.quantize_on_cuda]  # the CPU defaults
    options = small + ([AUTO] if with_auto else []) + [name for name in PRESETS if name not in small]
    reasons[AUTO] = None
    for run in runs:
        options.append(run.best_checkpoint)
        reasons[run.best_checkpoint] = reasons.get(run.base)
    return EmbedderChoices(options, {run.best_checkpoint: run.label for run in runs}, reasons)


def preset_rows(choices: EmbedderChoices) -> list[dict]:
    """The Models page's table of presets."""
    return [{
        "preset": name,
        "runs here": "yes" if choices.reasons[name] is None else "no: " + choices.reasons[name].split(";")[0],
        "model": spec.source, "pooling": spec.pooling,
        "queries": "instruction" if spec.query_template and "{instruction}" in spec.query_template else "bare",
        "licence": spec.licence,
    } for name, spec in PRESETS.items()]


def checkpoint_rows(runs: Sequence) -> list[dict]:
    return [{
        "run": r.name, "base": r.base, "corpus": Path(r.corpus).name, "best checkpoint": Path(r.best_checkpoint).name,
        f"base {r.metric}": r.base_score, f"best {r.metric}": r.best_score, "gain": r.gain,
    } for r in runs]


def index_rows(manifests: Sequence, embedder_label) -> list[dict]:
    """The Index page's table of built indexes."""
    return [{
        "corpus": m.corpus, "embedder": embedder_label(m), "documents": len(m.files),
        "chunks": m.chunk_count, "chunk size": m.chunk_config.get("chunk_size"), "path": m.corpus_path,
    } for m in manifests]
