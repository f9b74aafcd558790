"""Confusion counts at every distinct score threshold (the engine under thresholds and early lift)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConfusionCurve:
    """Counts when images with score >= threshold are called positive, one entry per distinct score.

    thresholds: (k,) distinct scores, descending; tp, fp: (k,) true and false positives there;
    n_positive, n_negative: totals.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_positive: int
    n_negative: int

    @property
    def sensitivity(self) -> np.ndarray:
        return self.tp / self.n_positive if self.n_positive else np.full(self.tp.shape, np.nan)

    @property
    def specificity(self) -> np.ndarray:
        if not self.n_negative:
            return np.full(self.fp.shape, np.nan)
        return (self.n_negative - self.fp) / self.n_negative


def confusion_curve(y_true: np.ndarray, y_score: np.ndarray) -> ConfusionCurve:
    """Confusion counts of checked (n,) bool truth and float scores at each distinct score."""
    order = np.argsort(-y_score, kind="stable")
    scores, truth = y_score[order], y_true[order]
    last_of_tie = np.append(np.flatnonzero(np.diff(scores)), scores.size - 1)
    tp = np.cumsum(truth)[last_of_tie]
    fp = last_of_tie + 1 - tp
    n_positive = int(truth.sum())
    return ConfusionCurve(scores[last_of_tie], tp, fp, n_positive, truth.size - n_positive)
