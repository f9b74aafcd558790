"""Calibration of predicted probabilities: Brier score, expected calibration error, reliability.

Binning (used by ECE and the reliability curve): `n_bins` equal-width bins over [0, 1]; bin k holds
scores with floor(score * n_bins) = k, i.e. [k/n_bins, (k+1)/n_bins), and a score of exactly 1.0
joins the last bin. ECE = sum over bins of (bin count / total) * |mean score - fraction positive|
(Naeini et al. 2015; Guo et al. 2017), in [0, 1], 0 for perfect calibration. For (n, L) input
every (image, label) pair counts as one prediction (micro pooling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics._checks import label_matrices, probabilities


def _flat_probabilities(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    truth, score = label_matrices(y_true, y_score)
    return truth.ravel().astype(np.float64), probabilities(score.ravel())


def brier_score(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Mean squared error of probabilities against 0/1 truth (Brier 1950), in [0, 1], lower is
    better. (n,) or (n, L) (pooled over all pairs); NaN for empty input."""
    truth, score = _flat_probabilities(y_true, y_score)
    return float(np.mean((score - truth) ** 2)) if truth.size else float("nan")


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram points, one per NON-EMPTY bin, in bin order.

    mean_score: mean predicted probability in the bin; fraction_positive: observed share of
    positives; count: predictions in the bin. The diagonal mean_score = fraction_positive is
    perfect calibration.
    """

    mean_score: np.ndarray
    fraction_positive: np.ndarray
    count: np.ndarray

    def as_dict(self) -> dict[str, list]:
        return {
            "mean_score": [float(v) for v in self.mean_score],
            "fraction_positive": [float(v) for v in self.fraction_positive],
            "count": [int(v) for v in self.count],
        }


def reliability_curve(y_true: ArrayLike, y_score: ArrayLike, n_bins: int = 10) -> Reliability:
    """Reliability curve over `n_bins` equal-width probability bins (see module docstring)."""
    if n_bins < 1:
        raise ConfigError(f"n_bins must be at least 1, got {n_bins}")
    truth, score = _flat_probabilities(y_true, y_score)
    bins = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    score_sum = np.bincount(bins, weights=score, minlength=n_bins)
    positive_sum = np.bincount(bins, weights=truth, minlength=n_bins)
    filled = count > 0
    return Reliability(
        mean_score=score_sum[filled] / count[filled],
        fraction_positive=positive_sum[filled] / count[filled],
        count=count[filled],
    )


def expected_calibration_error(y_true: ArrayLike, y_score: ArrayLike, n_bins: int = 10) -> float:
    """Expected calibration error over `n_bins` equal-width bins, in [0, 1]; NaN for empty input."""
    curve = reliability_curve(y_true, y_score, n_bins)
    total = curve.count.sum()
    if total == 0:
        return float("nan")
    gaps = np.abs(curve.mean_score - curve.fraction_positive)
    return float(np.sum(curve.count / total * gaps))


def calibration_summary(
    y_true: ArrayLike, y_score: ArrayLike, labels: Sequence[str], n_bins: int = 10
) -> dict[str, Any]:
    """metrics.json's calibration figures of (n, L) scores: pooled Brier and ECE, and one
    reliability curve per label ({label: {mean_score, fraction_positive, count}})."""
    truth, score = label_matrices(y_true, y_score)
    if truth.shape[1] != len(labels):
        raise ConfigError(f"{truth.shape[1]} score columns but {len(labels)} labels")
    return {
        "brier": brier_score(truth, score),
        "ece": expected_calibration_error(truth, score, n_bins),
        "reliability": {
            label: reliability_curve(truth[:, k], score[:, k], n_bins).as_dict()
            for k, label in enumerate(labels)
        },
    }
