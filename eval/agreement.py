"""Do two evaluations rank models the same way? Kendall's tau between their orderings."""

from __future__ import annotations

import math
from collections.abc import Mapping


def ordering(scores: Mapping[str, float | None]) -> list[str]:
    """Names best first (ties by name); names without a score are left out."""
    present = {k: v for k, v in scores.items() if v is not None}
    return sorted(present, key=lambda k: (-present[k], k))


def kendall_tau(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> float | None:
    """Kendall's tau-b over the names scored in both (None when fewer than two are)."""
    from scipy.stats import kendalltau

    common = sorted(k for k in a if k in b and a[k] is not None and b[k] is not None)
    if len(common) < 2:
        return None
    tau = kendalltau([a[k] for k in common], [b[k] for k in common]).statistic
    return None if math.isnan(tau) else float(tau)  # NaN when one side is constant
