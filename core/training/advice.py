"""What a run says when it ends: whether validation was still improving at its last epoch.

A run that ends on its epoch count while its validation macro AUC is still climbing has not
learnt what it could: on small collections that is the usual way a short run fails, and nothing
else says so (docs/your-own-films.md). The rule looks at the last quarter of the epochs: the last
epoch must be a new best, by at least `MIN_GAIN` over every epoch before that quarter. A flat
curve (0.991 -> 0.992 on easy films, or the same AUC three epochs running) or one that peaked
earlier says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# AUC gained over the last quarter of the epochs that counts as "still improving": above the
# noise of a validation split of a few hundred films, below what more epochs typically add.
MIN_GAIN = 0.005


def still_improving_line(val_aucs: Sequence[float], min_gain: float = MIN_GAIN) -> str | None:
    """One line when validation macro AUC (one value per epoch, in order) still rose at the last
    epoch; None otherwise (fewer than two epochs, NaN AUCs, a flat or falling end)."""
    aucs = [float(a) for a in val_aucs]
    n = len(aucs)
    if n < 2 or any(math.isnan(a) for a in aucs):
        return None
    window = max(1, n // 4)
    before = max(aucs[: n - window])
    last = aucs[-1]
    if last <= max(aucs[:-1]) or last - before < min_gain:
        return None
    return (
        f"still improving at the last epoch: try --epochs {2 * n} (validation macro AUC "
        f"{before:.3f} by epoch {n - window}, {last:.3f} at epoch {n})"
    )
