"""DeLong's test for two correlated ROC AUCs (two models scored on the same images), and Holm.

DeLong, DeLong & Clarke-Pearson (1988) estimate the covariance of AUCs measured on the same cases
from "structural components" (per-positive and per-negative placement values). Sun & Xu (2014,
IEEE Signal Processing Letters 21:1389) compute those components from mid-ranks in
O(n log n) instead of O(n_pos x n_neg); that is the algorithm used here. Ties count one half.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm, rankdata

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics._checks import binary_vector

_NAN = float("nan")


@dataclass(frozen=True)
class DeLongResult:
    """Paired comparison of model A and model B on one label.

    difference = auc_a - auc_b; variance and se are those of the difference; z = difference / se;
    p_value is two-sided; ci = difference +/- z_(1 - alpha/2) * se at `level`. Everything is NaN
    when the label has one value only. When both models rank every pair alike (se = 0) the
    difference is 0 and p = 1.
    """

    auc_a: float
    auc_b: float
    difference: float
    variance: float
    se: float
    z: float
    p_value: float
    ci: tuple[float, float]
    n_positive: int
    n_negative: int
    level: float = 0.95

    def as_dict(self) -> dict:
        out = asdict(self)
        out["ci"] = list(self.ci)
        return out


def _midrank_components(
    positives: np.ndarray, negatives: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,) and structural components V10 (k, m), V01 (k, n) for k score rows (Sun & Xu)."""
    m = positives.shape[1]
    n = negatives.shape[1]
    tx = rankdata(positives, axis=1)  # mid-ranks within positives
    ty = rankdata(negatives, axis=1)  # mid-ranks within negatives
    tz = rankdata(np.concatenate([positives, negatives], axis=1), axis=1)  # within all
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n  # share of negatives below each positive
    v01 = 1.0 - (tz[:, m:] - ty) / m  # share of positives above each negative
    return aucs, v10, v01


def delong_covariance(y_true: ArrayLike, *y_scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance matrix (k, k) for k models on the same images.

    Args:
        y_true: (n,) 0/1 truth of one label.
        *y_scores: one (n,) score array per model.
    Raises:
        ConfigError when the label has fewer than 2 positives or 2 negatives (no variance).
    """
    rows = []
    for scores in y_scores:
        truth, score = binary_vector(y_true, scores)
        rows.append(score)
    scores = np.vstack(rows)
    m, n = int(truth.sum()), int((~truth).sum())
    if m < 2 or n < 2:
        raise ConfigError(
            f"DeLong's variance needs at least 2 positive and 2 negative images, got {m} and {n}"
        )
    aucs, v10, v01 = _midrank_components(scores[:, truth], scores[:, ~truth])
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, covariance


def delong_test(
    y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, level: float = 0.95
) -> DeLongResult:
    """DeLong's test of H0: AUC_A = AUC_B for two models scored on the same (n,) images.

    Returns a DeLongResult (difference A - B); NaN fields when the label has fewer than two images
    of either class.
    """
    if not 0.0 < level < 1.0:
        raise ConfigError(f"confidence level must be between 0 and 1, got {level}")
    truth, a = binary_vector(y_true, score_a)
    _, b = binary_vector(y_true, score_b)
    m, n = int(truth.sum()), int((~truth).sum())
    if m < 2 or n < 2:
        return DeLongResult(_NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, (_NAN, _NAN), m, n, level)
    aucs, cov = delong_covariance(truth, a, b)
    difference = float(aucs[0] - aucs[1])
    variance = float(max(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1], 0.0))
    se = float(np.sqrt(variance))
    if se > 0.0:
        z = difference / se
        p_value = float(2.0 * norm.sf(abs(z)))
    else:
        # identical rankings: no evidence of a difference (a non-zero difference with zero
        # variance cannot arise from the same pairs)
        z, p_value = 0.0, 1.0
    half_width = float(norm.ppf(0.5 + level / 2.0)) * se
    ci = (difference - half_width, difference + half_width)
    return DeLongResult(
        float(aucs[0]), float(aucs[1]), difference, variance, se, z, p_value, ci, m, n, level
    )


def delong_auc_ci(
    y_true: ArrayLike, y_score: ArrayLike, level: float = 0.95
) -> tuple[float, float]:
    """Asymptotic (Wald) CI of one AUC from DeLong's variance, clipped to [0, 1]; NaN if undefined.

    Treats images as independent; prefer the patient bootstrap for the reported intervals.
    """
    truth, score = binary_vector(y_true, y_score)
    if min(int(truth.sum()), int((~truth).sum())) < 2:
        return (_NAN, _NAN)
    aucs, cov = delong_covariance(truth, score)
    half_width = float(norm.ppf(0.5 + level / 2.0)) * float(np.sqrt(cov[0, 0]))
    return (max(0.0, aucs[0] - half_width), min(1.0, aucs[0] + half_width))


def holm_adjust(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), controlling the family-wise error rate.

    The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)). NaN
    entries (untestable classes) stay NaN and do not count towards m. Reject H0 where adjusted
    p <= alpha.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return adjusted
    if (p[valid] < 0).any() or (p[valid] > 1).any():
        raise ConfigError("p-values must lie in [0, 1]")
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted
