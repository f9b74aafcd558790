"""Paired comparison of two runs evaluated on the same images: DeLong per class, bootstrap overall.

The paper's question is "does attention help this backbone?": model A (with attention) against
model B (without) on the same test images. Per class, DeLong's test gives the difference A - B, its
CI and a p-value, with Holm's correction across the classes. For micro and macro AUC, which DeLong
does not cover, `compare_runs_bootstrap` resamples patients once and scores both models on the same
resamples (a paired bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cxr_attention.core.errors import RunError
from cxr_attention.core.metrics.auc import auc_from_ranks, nanmean_or_nan
from cxr_attention.core.metrics.bootstrap import ClusterBootstrap, bootstrap_auc, percentile_ci
from cxr_attention.core.metrics.delong import delong_test, holm_adjust
from cxr_attention.core.metrics.summary import predictions_arrays

DELONG_COLUMNS = (
    "n_positive",
    "n_negative",
    "auc_a",
    "auc_b",
    "difference",
    "se",
    "z",
    "p_value",
    "p_holm",
    "ci_low",
    "ci_high",
)


def align_predictions(
    predictions_a: pd.DataFrame, predictions_b: pd.DataFrame, labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Line up two predictions tables on image_id.

    Returns (y_true (n, L), score_a (n, L), score_b (n, L), patient_ids (n,)) in the order of
    table A. Raises RunError when the tables hold different images, repeat an image, or disagree on
    the ground truth, and ConfigError when their labels differ from `labels`.
    """
    for name, frame in (("A", predictions_a), ("B", predictions_b)):
        if "image_id" not in frame:
            raise RunError(
                f"predictions of run {name} lack image_id: re-run `cxr-attention evaluate`"
            )
        if frame["image_id"].duplicated().any():
            raise RunError(f"predictions of run {name} list an image twice: the file is damaged")
    ids_a, ids_b = pd.Index(predictions_a["image_id"]), pd.Index(predictions_b["image_id"])
    only_a, only_b = ids_a.difference(ids_b), ids_b.difference(ids_a)
    if len(only_a) or len(only_b):
        raise RunError(
            f"the runs scored different images ({len(only_a)} only in A, {len(only_b)} only in B, "
            f"e.g. {(list(only_a) + list(only_b))[0]}): evaluate both on the same data and split"
        )
    frame_b = predictions_b.set_index("image_id").loc[ids_a].reset_index()
    y_true, score_a = predictions_arrays(predictions_a, labels)
    y_true_b, score_b = predictions_arrays(frame_b, labels)
    if not np.array_equal(y_true, y_true_b):
        raise RunError(
            "the runs disagree on the ground truth of the same images: evaluate both against "
            "the same dataset"
        )
    if "patient_id" not in predictions_a:
        raise RunError("predictions of run A lack patient_id: re-run `cxr-attention evaluate`")
    return y_true, score_a, score_b, predictions_a["patient_id"].to_numpy()


def compare_runs_delong(
    predictions_a: pd.DataFrame,
    predictions_b: pd.DataFrame,
    labels: Sequence[str],
    level: float = 0.95,
) -> pd.DataFrame:
    """DeLong's test per class for run A against run B on the same images, Holm-adjusted.

    Returns a DataFrame indexed by label with columns DELONG_COLUMNS: counts, auc_a, auc_b,
    difference (A - B), its se, z, two-sided p_value, p_holm (Holm across the testable classes)
    and the DeLong CI of the difference (ci_low, ci_high) at `level`. NaN rows for classes with
    fewer than two images of either value.
    """
    y_true, score_a, score_b, _ = align_predictions(predictions_a, predictions_b, labels)
    rows = {}
    for k, label in enumerate(labels):
        result = delong_test(y_true[:, k], score_a[:, k], score_b[:, k], level=level)
        rows[label] = {
            **{c: getattr(result, c) for c in DELONG_COLUMNS if hasattr(result, c)},
            "ci_low": result.ci[0],
            "ci_high": result.ci[1],
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["p_holm"] = holm_adjust(table["p_value"].to_numpy())
    table.index.name = "label"
    return table[list(DELONG_COLUMNS)]


def compare_runs_bootstrap(
    predictions_a: pd.DataFrame,
    predictions_b: pd.DataFrame,
    labels: Sequence[str],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Paired patient bootstrap of the AUC differences A - B (micro, macro and per class).

    Both runs are scored on the same resamples, so the interval reflects the paired design.
    Returns {"micro": {"auc_a", "auc_b", "difference", "ci": [lo, hi]}, "macro": {...},
    "per_class": {label: {...}}, "bootstrap": {"n_resamples", "unit", "seed", "level"}}.
    """
    y_true, score_a, score_b, patients = align_predictions(predictions_a, predictions_b, labels)
    draws = ClusterBootstrap.draw(patients, n_resamples, seed)
    boot_a = bootstrap_auc(y_true, score_a, patients, level=level, bootstrap=draws)
    boot_b = bootstrap_auc(y_true, score_b, patients, level=level, bootstrap=draws)
    truth = y_true.astype(bool)

    def entry(auc_a: float, auc_b: float, samples: np.ndarray) -> dict[str, Any]:
        return {
            "auc_a": float(auc_a),
            "auc_b": float(auc_b),
            "difference": float(auc_a - auc_b),
            "ci": list(percentile_ci(samples, level)),
        }

    per_a = np.array([auc_from_ranks(truth[:, k], score_a[:, k]) for k in range(len(labels))])
    per_b = np.array([auc_from_ranks(truth[:, k], score_b[:, k]) for k in range(len(labels))])
    return {
        "micro": entry(
            auc_from_ranks(truth.ravel(), score_a.ravel()),
            auc_from_ranks(truth.ravel(), score_b.ravel()),
            boot_a.micro - boot_b.micro,
        ),
        "macro": entry(nanmean_or_nan(per_a), nanmean_or_nan(per_b), boot_a.macro - boot_b.macro),
        "per_class": {
            label: entry(per_a[k], per_b[k], boot_a.per_class[:, k] - boot_b.per_class[:, k])
            for k, label in enumerate(labels)
        },
        "bootstrap": {
            "n_resamples": int(n_resamples),
            "unit": "patient",
            "seed": int(seed),
            "level": float(level),
        },
    }
