"""Operating thresholds: chosen on the validation split, applied to the test split.

Choosing a threshold on the split it is evaluated on inflates sensitivity and specificity, so the
API separates the two steps: `choose_thresholds(y_true_val, y_score_val, labels)` returns
`{label: {"youden": t, "f1": t}}` (the format checkpoints store), and
`apply_thresholds(y_true_test, y_score_test, thresholds, labels)` evaluates them.

An image is called positive when its score >= threshold. Candidate thresholds are the distinct
validation scores; among equally good ones the highest is kept (the more specific call).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics._checks import binary_vector, label_matrices
from cxr_attention.core.metrics._curve import confusion_curve

RULES = ("youden", "f1")
# Scores of equally good thresholds may differ in the last bits after division.
_TIE_TOLERANCE = 1e-12


def _first_best(values: np.ndarray) -> int:
    return int(np.flatnonzero(values >= values.max() - _TIE_TOLERANCE)[0])


def youden_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1 (Youden 1950).

    (n,) inputs; NaN when the label has one value only.
    """
    truth, score = binary_vector(y_true, y_score)
    curve = confusion_curve(truth, score)
    if curve.n_positive == 0 or curve.n_negative == 0:
        return float("nan")
    youden = curve.sensitivity + curve.specificity - 1.0
    return float(curve.thresholds[_first_best(youden)])


def f1_threshold(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Threshold maximising F1 = 2 TP / (2 TP + FP + FN). (n,) inputs; NaN without positives."""
    truth, score = binary_vector(y_true, y_score)
    curve = confusion_curve(truth, score)
    if curve.n_positive == 0:
        return float("nan")
    f1 = 2.0 * curve.tp / (curve.tp + curve.fp + curve.n_positive)
    return float(curve.thresholds[_first_best(f1)])


def choose_thresholds(
    y_true: ArrayLike, y_score: ArrayLike, labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per-label Youden and F1 thresholds from the VALIDATION split.

    Args:
        y_true, y_score: (n, L) validation truth and scores, columns in `labels` order.
        labels: the L label names.
    Returns:
        {label: {"youden": t, "f1": t}}, NaN where a label cannot be thresholded.
    """
    truth, score = label_matrices(y_true, y_score)
    if truth.shape[1] != len(labels):
        raise ConfigError(f"{truth.shape[1]} score columns but {len(labels)} labels")
    return {
        label: {
            "youden": youden_threshold(truth[:, k], score[:, k]),
            "f1": f1_threshold(truth[:, k], score[:, k]),
        }
        for k, label in enumerate(labels)
    }


@dataclass(frozen=True)
class OperatingPoint:
    """Confusion counts and rates at one threshold (score >= threshold is positive).

    Rates are NaN where their denominator is 0 (e.g. PPV when nothing is called positive) or the
    threshold is NaN.
    """

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: float
    specificity: float
    ppv: float
    npv: float
    f1: float

    def as_dict(self) -> dict:
        return asdict(self)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def apply_threshold(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> OperatingPoint:
    """Sensitivity, specificity, PPV, NPV and F1 of (n,) scores called positive at >= threshold."""
    truth, score = binary_vector(y_true, y_score)
    threshold = float(threshold)
    if np.isnan(threshold):
        nan = float("nan")
        return OperatingPoint(nan, 0, 0, 0, 0, nan, nan, nan, nan, nan)
    called = score >= threshold
    tp = int((called & truth).sum())
    fp = int((called & ~truth).sum())
    fn = int((~called & truth).sum())
    tn = int((~called & ~truth).sum())
    return OperatingPoint(
        threshold=threshold,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        sensitivity=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp),
        ppv=_ratio(tp, tp + fp),
        npv=_ratio(tn, tn + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
    )


def apply_thresholds(
    y_true: ArrayLike,
    y_score: ArrayLike,
    thresholds: Mapping[str, Mapping[str, float] | float],
    labels: Sequence[str],
    rule: str = "youden",
) -> dict[str, OperatingPoint]:
    """Evaluate validation-chosen thresholds on (n, L) TEST truth and scores.

    Args:
        thresholds: {label: {"youden": t, "f1": t}} from `choose_thresholds` (or {label: t}).
        labels: the L labels, in column order; each must have a threshold.
        rule: which threshold of each label to apply, "youden" or "f1".
    """
    if rule not in RULES:
        raise ConfigError(f"unknown threshold rule {rule!r}: choose one of {', '.join(RULES)}")
    truth, score = label_matrices(y_true, y_score)
    if truth.shape[1] != len(labels):
        raise ConfigError(f"{truth.shape[1]} score columns but {len(labels)} labels")
    missing = [label for label in labels if label not in thresholds]
    if missing:
        raise ConfigError(
            f"no threshold for {missing}: choose thresholds on the validation split first"
        )
    points = {}
    for k, label in enumerate(labels):
        chosen = thresholds[label]
        value = chosen.get(rule, float("nan")) if isinstance(chosen, Mapping) else chosen
        value = float("nan") if value is None else value
        points[label] = apply_threshold(truth[:, k], score[:, k], value)
    return points
