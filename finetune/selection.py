"""Choosing what a run ships: a checkpoint only when it beats the base beyond noise, and harms nothing.

Held-out queries (all sources: generated, title, cloze) are split in two halves by a hash of
their id. The best checkpoint is chosen on the *select* half (macro mean over sources, so the
thousands of cloze pairs cannot outvote the rest); its gain over the base is then measured on
the *confirm* half, which played no part in the choice, with a paired bootstrap stratified by
source. A checkpoint is recommended only when that interval lies above zero and the
out-of-domain guard (Spearman on STS-B sentence pairs) drops by no more than the allowed amount;
otherwise the run says so and recommends the base. Pure functions; the evaluate stage does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def half_of(pair_id: str) -> str:
    """``"select"`` or ``"confirm"``, stable for an id."""
    return "select" if hashlib.sha256(pair_id.encode()).digest()[0] % 2 == 0 else "confirm"


def macro_mean(values: np.ndarray, sources: Sequence[str]) -> float:
    """Mean of the per-source means."""
    sources = np.asarray(sources)
    means = [values[sources == s].mean() for s in np.unique(sources)]
    return float(np.mean(means)) if means else 0.0


def stratified_bootstrap(diff: np.ndarray, sources: Sequence[str], resamples: int,
                         seed: int = 0) -> tuple[float, float]:
    """95 % interval of the macro-mean difference, resampling queries within each source."""
    sources = np.asarray(sources)
    rng = np.random.default_rng(seed)
    groups = [diff[sources == s] for s in np.unique(sources)]
    if not groups or resamples <= 0:
        return float("nan"), float("nan")
    draws = np.zeros(resamples)
    for group in groups:
        draws += group[rng.integers(0, len(group), size=(resamples, len(group)))].mean(axis=1)
    draws /= len(groups)
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Verdict:
    recommended: str  # a checkpoint name, or "base"
    gain: float  # macro-mean nDCG gain of the chosen checkpoint on the confirm half
    interval: tuple[float, float]
    guard_drop: float | None  # base minus checkpoint Spearman on the guard (None: no guard)
    reason: str

    def to_json(self) -> dict:
        return {"recommended": self.recommended, "confirm_gain": round(self.gain, 4),
                "confirm_interval": [round(self.interval[0], 4), round(self.interval[1], 4)],
                "guard_drop": None if self.guard_drop is None else round(self.guard_drop, 4), "reason": self.reason}


def decide(best: str, diff: np.ndarray, sources: Sequence[str], resamples: int, guard_drop: float | None,
           max_drop: float, seed: int = 0) -> Verdict:
    """The verdict for checkpoint ``best`` given its per-query differences from the base on the confirm half."""
    if len(diff) == 0:
        return Verdict("base", 0.0, (float("nan"), float("nan")), guard_drop,
                       "no confirm-half queries to test the checkpoint on: keep the base")
    gain = macro_mean(diff, sources)
    low, high = stratified_bootstrap(diff, sources, resamples, seed)
    if guard_drop is not None and guard_drop > max_drop:
        return Verdict("base", gain, (low, high), guard_drop,
                       f"{best} loses {guard_drop:.3f} Spearman on the out-of-domain guard (allowed {max_drop}): "
                       "keep the base")
    if not low > 0:
        return Verdict("base", gain, (low, high), guard_drop,
                       f"{best} is not better than the base beyond noise on held-out queries "
                       f"({gain:+.4f}, 95% [{low:+.4f}, {high:+.4f}]): keep the base")
    return Verdict(best, gain, (low, high), guard_drop,
                   f"{best} beats the base on held-out queries ({gain:+.4f}, 95% [{low:+.4f}, {high:+.4f}])")
