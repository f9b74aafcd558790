"""ROC curves of every run per class (and pooled, micro), from predictions.csv, ready to plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cxr_attention.core.metrics import RocCurve, roc_curve_points
from cxr_attention.core.report.results import RunResult

# Points kept per curve in the HTML (a test set of 25,596 images has thousands of ROC vertices).
MAX_POINTS = 400
MICRO = "micro (all classes pooled)"


@dataclass(frozen=True)
class Curve:
    """One run's ROC curve for one class: fpr, tpr (k,) in [0, 1] and its AUC."""

    run: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def thin(curve: RocCurve, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` vertices, first and last kept (a plot cannot show more)."""
    n = curve.fpr.size
    if n <= max_points:
        return curve.fpr, curve.tpr
    keep = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return curve.fpr[keep], curve.tpr[keep]


def roc_curves(results: Sequence[RunResult], labels: Sequence[str]) -> dict[str, list[Curve]]:
    """{class or MICRO: [Curve per run that has the class]}; classes with one value are skipped."""
    curves: dict[str, list[Curve]] = {MICRO: []}
    for label in labels:
        curves[label] = []
    for r in results:
        frame = r.predictions()
        truths, scores = [], []
        for label in r.labels:
            truth = frame[f"y_true_{label}"].to_numpy()
            score = frame[f"y_score_{label}"].to_numpy(dtype=np.float64)
            truths.append(truth)
            scores.append(score)
            curve = roc_curve_points(truth, score)
            if curve.fpr.size and label in curves:
                curves[label].append(Curve(r.name, *thin(curve), curve.auc))
        if truths:
            pooled = roc_curve_points(np.concatenate(truths), np.concatenate(scores))
            if pooled.fpr.size:
                curves[MICRO].append(Curve(r.name, *thin(pooled), pooled.auc))
    return {key: value for key, value in curves.items() if value}
