"""Choosing what a run ships: a checkpoint only when it beats the base beyond noise, and harms nothing.

Every held-out query (all sources: generated, title, cloze) scores every checkpoint and the base.
The best checkpoint is the one with the highest macro mean gain over sources (so the many cloze
pairs cannot outvote the rest). Choosing the best of several on the same queries inflates its
gain, so the test is *simultaneous*: a stratified bootstrap of the largest deviation over all
checkpoints (the max-T method of Westfall & Young / Romano & Wolf) gives lower bounds that hold
for every checkpoint at once, the chosen one included. Resampling units are held-out *chunks*
within each source, so several queries cut from one chunk count as one correlated unit. This
uses all held-out queries for both choosing and testing; an earlier design split them in halves,
which halved the evidence the test could use.

A checkpoint is recommended only when its simultaneous lower bound lies above zero and the
out-of-domain guard (Spearman on STS-B sentence pairs) drops by no more than the allowed amount;
otherwise the run says so and recommends the base. Pure functions; the evaluate stage does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: One-sided level of each bound; 0.975 matches the lower end of a two-sided 95 % interval.
LEVEL = 0.975


def macro_mean(values: np.ndarray, sources: Sequence[str], clusters: Sequence[str] | None = None) -> float:
    """Mean over sources of each source's mean (of its clusters' means, when clusters are given)."""
    if not len(sources):
        return 0.0
    return float(_macro(_cluster_means(np.atleast_2d(np.asarray(values, dtype=float)), sources, clusters))[0])


def _macro(groups: list[np.ndarray]) -> np.ndarray:
    """Per checkpoint, the mean over sources of each source's mean over its clusters."""
    return np.mean([g.mean(axis=1) for g in groups], axis=0)


def _cluster_means(diffs: np.ndarray, sources: Sequence[str], clusters: Sequence[str] | None) -> list[np.ndarray]:
    """Per source, a (checkpoints, clusters) array of each cluster's mean difference; each query is its
    own cluster when ``clusters`` is None."""
    sources = np.asarray(sources)
    clusters = np.asarray(clusters if clusters is not None else np.arange(diffs.shape[1]).astype(str))
    out = []
    for source in np.unique(sources):
        mask = sources == source
        keys, inverse = np.unique(clusters[mask], return_inverse=True)
        sums = np.zeros((diffs.shape[0], len(keys)))
        np.add.at(sums.T, inverse, diffs[:, mask].T)
        out.append(sums / np.bincount(inverse, minlength=len(keys)))
    return out


def simultaneous_intervals(diffs: np.ndarray, sources: Sequence[str], clusters: Sequence[str] | None = None,
                           resamples: int = 2000, seed: int = 0, level: float = LEVEL):
    """Macro-mean gains of each checkpoint (rows of ``diffs``: checkpoint minus base, per query) and
    bounds that hold for all rows at once, each one-sided at ``level``.

    A source's mean is the mean of its clusters' means (a cluster: the queries of one held-out chunk;
    each query its own cluster when ``clusters`` is None). Returns ``(gains, lows, highs)``.
    """
    diffs = np.atleast_2d(np.asarray(diffs, dtype=float))
    groups = _cluster_means(diffs, sources, clusters)
    gains = _macro(groups)
    if resamples <= 0:
        nan = np.full(len(gains), np.nan)
        return gains, nan, nan
    rng = np.random.default_rng(seed)
    draws = np.zeros((resamples, diffs.shape[0]))
    for group in groups:
        picks = rng.integers(0, group.shape[1], size=(resamples, group.shape[1]))
        draws += group[:, picks].mean(axis=2).T
    draws /= len(groups)
    above = np.quantile((draws - gains).max(axis=1), level)  # how far the luckiest checkpoint overshoots
    below = np.quantile((gains - draws).max(axis=1), level)
    return gains, gains - above, gains + below


@dataclass(frozen=True)
class Verdict:
    recommended: str  # a checkpoint name, or "base"
    gain: float  # macro-mean nDCG gain of the chosen checkpoint on all held-out queries
    interval: tuple[float, float]  # simultaneous over the checkpoints compared
    guard_drop: float | None  # base minus checkpoint Spearman on the guard (None: no guard)
    reason: str
    checkpoints_compared: int = 1

    def to_json(self) -> dict:
        return {"recommended": self.recommended, "gain": round(self.gain, 4),
                "interval": [round(self.interval[0], 4), round(self.interval[1], 4)],
                "checkpoints_compared": self.checkpoints_compared,
                "guard_drop": None if self.guard_drop is None else round(self.guard_drop, 4), "reason": self.reason}


def best_checkpoint(names: Sequence[str], gains: np.ndarray) -> int:
    """Index of the highest gain; ties go to the later checkpoint (it trained longer on the same data)."""
    return max(range(len(names)), key=lambda i: (round(float(gains[i]), 10), i))


def decide(best: str, gain: float, interval: tuple[float, float], guard_drop: float | None, max_drop: float,
           compared: int = 1) -> Verdict:
    """The verdict for checkpoint ``best``: its gain and simultaneous interval (from
    :func:`simultaneous_intervals`) and its loss on the guard."""
    if not np.isfinite(gain) or not np.all(np.isfinite(interval)):
        return Verdict("base", 0.0, (float("nan"), float("nan")), guard_drop,
                       "no held-out queries to test a checkpoint on: keep the base", compared)
    shown = f"({gain:+.4f}, 95% [{interval[0]:+.4f}, {interval[1]:+.4f}], best of {compared})"
    if guard_drop is not None and guard_drop > max_drop:
        reason = (f"{best} loses {guard_drop:.3f} Spearman on the out-of-domain guard (allowed {max_drop}): "
                  "keep the base")
        return Verdict("base", gain, interval, guard_drop, reason, compared)
    if not interval[0] > 0:
        reason = f"{best} is not better than the base beyond noise on held-out queries {shown}: keep the base"
        return Verdict("base", gain, interval, guard_drop, reason, compared)
    return Verdict(best, gain, interval, guard_drop, f"{best} beats the base on held-out queries {shown}", compared)
