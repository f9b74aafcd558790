"""Early lift: how well a model does at the low false-positive rates that triage works at.

The paper highlights this region: a worklist that flags studies must keep false alarms rare. Two
views of it: the partial AUC over FPR in [0, max_fpr] and the sensitivity reached at a fixed high
specificity.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics._checks import binary_vector
from cxr_attention.core.metrics._curve import confusion_curve


def partial_auc(y_true: ArrayLike, y_score: ArrayLike, max_fpr: float = 0.1) -> float:
    """Raw partial AUC: area under the ROC curve for FPR in [0, max_fpr].

    Args:
        y_true, y_score: (n,) one label.
        max_fpr: upper FPR bound, in (0, 1].
    Returns:
        Area in [0, max_fpr] (a perfect model scores max_fpr, chance max_fpr^2 / 2); the curve is
        interpolated linearly at max_fpr, as scikit-learn does. NaN when one class is absent.
    """
    if not 0.0 < max_fpr <= 1.0:
        raise ConfigError(f"max_fpr must be in (0, 1], got {max_fpr}")
    truth, score = binary_vector(y_true, y_score)
    curve = confusion_curve(truth, score)
    if curve.n_positive == 0 or curve.n_negative == 0:
        return float("nan")
    fpr = np.concatenate([[0.0], curve.fp / curve.n_negative])
    tpr = np.concatenate([[0.0], curve.tp / curve.n_positive])
    stop = int(np.searchsorted(fpr, max_fpr, side="right"))
    if stop < fpr.size:  # close the area with the interpolated point at max_fpr
        tpr_at = np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1])
        fpr = np.append(fpr[:stop], max_fpr)
        tpr = np.append(tpr[:stop], tpr_at)
    return float(np.trapezoid(tpr, fpr))


def standardized_partial_auc(y_true: ArrayLike, y_score: ArrayLike, max_fpr: float = 0.1) -> float:
    """McClish-standardised partial AUC (McClish 1989), on the familiar AUC scale.

    0.5 (chance: the diagonal gives max_fpr^2 / 2) ... 1 (perfect: max_fpr), via
    0.5 * (1 + (pAUC - min) / (max - min)); equal to scikit-learn's
    `roc_auc_score(..., max_fpr=max_fpr)`. This is `pauc_fpr10` in metrics.json. It can fall below
    0.5 for a model worse than chance in this region.
    """
    raw = partial_auc(y_true, y_score, max_fpr)
    lowest, highest = max_fpr**2 / 2.0, max_fpr
    return float(0.5 * (1.0 + (raw - lowest) / (highest - lowest)))


def sensitivity_at_specificity(
    y_true: ArrayLike, y_score: ArrayLike, specificity: float = 0.9
) -> float:
    """Highest sensitivity among thresholds whose specificity is at least `specificity`.

    No interpolation between ROC points: the value is reached by a real threshold. NaN when one
    class is absent.
    """
    if not 0.0 <= specificity <= 1.0:
        raise ConfigError(f"specificity must be in [0, 1], got {specificity}")
    truth, score = binary_vector(y_true, y_score)
    curve = confusion_curve(truth, score)
    if curve.n_positive == 0 or curve.n_negative == 0:
        return float("nan")
    # compare counts, not rates, so that 0.9 of 10 negatives allows exactly 1 false positive
    allowed_fp = np.floor((1.0 - specificity) * curve.n_negative + 1e-9)
    reachable = curve.fp <= allowed_fp
    if not reachable.any():
        return 0.0  # only the "call nothing positive" threshold meets the specificity
    return float(curve.tp[reachable].max() / curve.n_positive)
