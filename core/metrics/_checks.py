"""Input checks shared by the metric functions: shapes, binary labels, finite scores.

Every public metric takes `y_true` (0/1, bool or float 0.0/1.0) and `y_score` (any finite real; a
probability where the metric says so) of the same shape, either (n,) for one label or (n, L) with
columns in label order.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cxr_attention.core.errors import ConfigError


def label_matrices(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Checked copies as (n, L): bool truth and float64 scores; (n,) input becomes (n, 1)."""
    truth = np.asarray(y_true)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.shape != score.shape:
        raise ConfigError(
            f"y_true has shape {truth.shape} but y_score has shape {score.shape}: "
            "pass one score per label per image"
        )
    if truth.ndim not in (1, 2):
        raise ConfigError(f"expected arrays of shape (n,) or (n, L), got {truth.ndim} dimensions")
    if truth.ndim == 1:
        truth, score = truth[:, None], score[:, None]
    if truth.size and not np.isin(truth, (0, 1)).all():
        raise ConfigError("y_true must hold only 0 and 1 (one binary column per label)")
    if not np.isfinite(score).all():
        raise ConfigError("y_score holds NaN or infinite values: score every image before metrics")
    return truth.astype(bool), score


def binary_vector(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Checked (n,) bool truth and float64 scores for one label."""
    if np.ndim(y_true) != 1:
        raise ConfigError(
            f"expected one label as shape (n,), got shape {np.shape(y_true)}: pass one column"
        )
    truth, score = label_matrices(y_true, y_score)
    return truth[:, 0], score[:, 0]


def probabilities(y_score: np.ndarray) -> np.ndarray:
    """Refuse scores outside [0, 1] where a metric needs probabilities (calibration)."""
    if y_score.size and (y_score.min() < 0.0 or y_score.max() > 1.0):
        raise ConfigError(
            "calibration needs probabilities in [0, 1]: pass sigmoid outputs, not logits"
        )
    return y_score
