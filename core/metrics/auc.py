"""ROC AUC per class, micro and macro, and ROC curve points.

AUC is the Mann-Whitney statistic: the probability that a random positive image scores above a
random negative one, ties counting one half (Hanley & McNeil 1982); it equals the trapezoidal area
under the ROC curve that scikit-learn reports. A class whose `y_true` holds one value only has no
AUC: it is NaN, never an exception, so a rare finding missing from a small split does not stop an
evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.metrics import roc_curve

from cxr_attention.core.metrics._checks import binary_vector, label_matrices


def auc_from_ranks(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """AUC of checked 1-D arrays (bool truth) via mid-ranks; NaN when a class is absent."""
    n_pos = int(y_true.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(y_score)  # average ranks: ties count one half
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """ROC AUC of one label.

    Args:
        y_true: (n,) 0/1 ground truth.
        y_score: (n,) scores, higher meaning more likely positive (any real scale).
    Returns:
        AUC in [0, 1]; NaN when `y_true` has only positives or only negatives.
    """
    truth, score = binary_vector(y_true, y_score)
    return auc_from_ranks(truth, score)


def per_class_auc(y_true: ArrayLike, y_score: ArrayLike) -> np.ndarray:
    """ROC AUC of each label: (n, L) inputs -> (L,) array, NaN for one-valued classes."""
    truth, score = label_matrices(y_true, y_score)
    return np.array([auc_from_ranks(truth[:, k], score[:, k]) for k in range(truth.shape[1])])


def micro_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Micro-averaged AUC: one AUC over all (image, label) pairs flattened together.

    This is the paper's headline measure. On imbalanced ChestX-ray14 it runs above the macro AUC,
    because the many easy negatives of rare labels dominate the pooled pairs.
    """
    truth, score = label_matrices(y_true, y_score)
    return auc_from_ranks(truth.ravel(), score.ravel())


def nanmean_or_nan(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Mean ignoring NaN, NaN (without a warning) where every value is NaN."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    count = valid.sum(axis=axis)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(mean) if np.ndim(mean) == 0 else mean


def macro_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Macro-averaged AUC: the mean of per-class AUCs over classes that have both values.

    Classes with one value (NaN AUC) are left out of the mean; NaN when no class qualifies.
    """
    return float(nanmean_or_nan(per_class_auc(y_true, y_score)))


@dataclass(frozen=True)
class RocCurve:
    """Points of one ROC curve (scikit-learn's `roc_curve`, intermediate collinear points dropped).

    fpr, tpr: (k,) rates in [0, 1] from (0, 0) to (1, 1); thresholds: (k,) score cut-offs, image
    predicted positive when score >= threshold (the first is +inf). Empty arrays and NaN `auc` when
    the label has one value only.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float


def roc_curve_points(y_true: ArrayLike, y_score: ArrayLike) -> RocCurve:
    """The ROC curve of one label ((n,) inputs), ready to plot."""
    truth, score = binary_vector(y_true, y_score)
    auc = auc_from_ranks(truth, score)
    if np.isnan(auc):
        empty = np.empty(0)
        return RocCurve(empty, empty, empty, auc)
    fpr, tpr, thresholds = roc_curve(truth, score)
    return RocCurve(fpr, tpr, thresholds, auc)
