"""metrics.json from a predictions table: every metric of this package in one dictionary.

The predictions table is predictions.csv of a run folder: image_id, patient_id, sex, age, view,
split, y_true_<label>..., y_score_<label>... (labels in the checkpoint's order, scores sigmoid
probabilities). The caller adds "run", "data" and "model" and writes the dictionary with
`core.runs.write_json`, which turns NaN (an undefined metric) into null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cxr_attention.core.errors import ConfigError, RunError
from cxr_attention.core.labels import check_same_labels
from cxr_attention.core.metrics.auc import auc_from_ranks, nanmean_or_nan
from cxr_attention.core.metrics.bootstrap import bootstrap_auc
from cxr_attention.core.metrics.calibration import (
    brier_score,
    calibration_summary,
    expected_calibration_error,
)
from cxr_attention.core.metrics.early_lift import (
    sensitivity_at_specificity,
    standardized_partial_auc,
)
from cxr_attention.core.metrics.subgroups import subgroup_table
from cxr_attention.core.metrics.thresholds import RULES, apply_thresholds

TRUE_PREFIX = "y_true_"
SCORE_PREFIX = "y_score_"
# Early-lift settings behind the metrics.json field names pauc_fpr10, sens_at_spec90/95.
PAUC_MAX_FPR = 0.1
SPECIFICITIES = {"sens_at_spec90": 0.90, "sens_at_spec95": 0.95}


def prediction_labels(predictions: pd.DataFrame) -> tuple[str, ...]:
    """The labels of a predictions table, in column order of its y_score_<label> columns."""
    return tuple(c[len(SCORE_PREFIX) :] for c in predictions.columns if c.startswith(SCORE_PREFIX))


def predictions_arrays(
    predictions: pd.DataFrame, labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(y_true int (n, L) of 0/1, y_score float64 (n, L)) from a predictions table.

    Raises ConfigError when the table's labels differ from `labels` (content or order), RunError
    when a column is missing or holds values that are not 0/1 truth or finite scores.
    """
    check_same_labels(labels, prediction_labels(predictions), "predictions table vs labels")
    true_columns = [TRUE_PREFIX + label for label in labels]
    score_columns = [SCORE_PREFIX + label for label in labels]
    missing = [c for c in true_columns if c not in predictions]
    if missing:
        raise RunError(f"predictions lack columns {missing}: re-run `cxr-attention evaluate`")
    y_true = predictions[true_columns].to_numpy(dtype=np.float64, na_value=np.nan)
    y_score = predictions[score_columns].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise RunError("predictions hold y_true values other than 0 and 1: the file is damaged")
    if not np.isfinite(y_score).all():
        raise RunError(
            "predictions hold missing or infinite scores: re-run `cxr-attention evaluate`"
        )
    return y_true.astype(np.int64), y_score


def _split_name(predictions: pd.DataFrame) -> str | None:
    if "split" not in predictions:
        return None
    names = predictions["split"].dropna().unique()
    return str(names[0]) if len(names) == 1 else None


def _pair(values: Sequence[float]) -> list[float]:
    return [float(values[0]), float(values[1])]


def summarize_predictions(
    predictions: pd.DataFrame,
    labels: Sequence[str],
    thresholds: Mapping[str, Mapping[str, float]] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    n_bins: int = 10,
    operating_rule: str = "youden",
) -> dict[str, Any]:
    """All metrics of one evaluated split, as the metrics.json dictionary (without run/data/model).

    Args:
        predictions: the predictions table (see module docstring); one row per image.
        labels: labels in order; must equal the table's y_score_ columns.
        thresholds: {label: {"youden": t, "f1": t}} chosen on the VALIDATION split (from the
            checkpoint). None leaves the thresholds and the operating-point metrics NaN: they are
            never chosen on the split being summarised.
        n_resamples, seed, level: the patient bootstrap behind every *_ci (0 resamples: NaN CIs).
        n_bins: equal-width probability bins of ECE and the reliability curves.
        operating_rule: which threshold ("youden" or "f1") gives per_class sensitivity,
            specificity, ppv and f1.
    Returns:
        {"split", "n_images", "n_patients", "labels", "micro_auc", "micro_auc_ci", "macro_auc",
        "macro_auc_ci", "per_class", "calibration", "subgroups", "bootstrap"}, where per_class
        holds for each label: auc, auc_ci, n_positive, prevalence, pauc_fpr10 (McClish-standardised
        partial AUC over FPR <= 0.1, 0.5 = chance, 1 = perfect), sens_at_spec90, sens_at_spec95,
        threshold {"youden", "f1"}, sensitivity, specificity, ppv, f1 (at the `operating_rule`
        threshold), brier, ece. calibration pools all (image, label) pairs for brier and ece and
        gives a reliability curve per label (non-empty bins only). NaN marks undefined values.
    """
    if operating_rule not in RULES:
        raise ConfigError(
            f"unknown threshold rule {operating_rule!r}: choose one of {', '.join(RULES)}"
        )
    if len(predictions) == 0:
        raise RunError("the predictions table has no rows: evaluate a split that holds images")
    if "patient_id" not in predictions:
        raise RunError("predictions lack the patient_id column: re-run `cxr-attention evaluate`")
    labels = list(labels)
    y_true, y_score = predictions_arrays(predictions, labels)
    if thresholds is not None:
        thresholds = _threshold_table(thresholds, labels)
    patients = predictions["patient_id"].to_numpy()
    if pd.isna(patients).any():
        raise RunError("predictions hold images without a patient_id: the file is damaged")

    boot = bootstrap_auc(y_true, y_score, patients, n_resamples=n_resamples, seed=seed, level=level)
    per_class_auc = np.array(
        [auc_from_ranks(y_true[:, k].astype(bool), y_score[:, k]) for k in range(len(labels))]
    )
    nan = float("nan")
    if thresholds is not None:
        points = apply_thresholds(y_true, y_score, thresholds, labels, rule=operating_rule)
    per_class: dict[str, dict[str, Any]] = {}
    for k, label in enumerate(labels):
        truth, score = y_true[:, k], y_score[:, k]
        chosen = dict(thresholds[label]) if thresholds is not None else {}
        point = points[label] if thresholds is not None else None
        per_class[label] = {
            "auc": float(per_class_auc[k]),
            "auc_ci": _pair(boot.per_class_ci[k]),
            "n_positive": int(truth.sum()),
            "prevalence": float(truth.mean()),
            "pauc_fpr10": standardized_partial_auc(truth, score, PAUC_MAX_FPR),
            **{
                name: sensitivity_at_specificity(truth, score, specificity)
                for name, specificity in SPECIFICITIES.items()
            },
            "threshold": {rule: _float(chosen.get(rule)) for rule in RULES},
            "sensitivity": point.sensitivity if point else nan,
            "specificity": point.specificity if point else nan,
            "ppv": point.ppv if point else nan,
            "f1": point.f1 if point else nan,
            "brier": brier_score(truth, score),
            "ece": expected_calibration_error(truth, score, n_bins),
        }
    return {
        "split": _split_name(predictions),
        "n_images": int(len(predictions)),
        "n_patients": int(pd.Series(patients).nunique()),
        "labels": labels,
        "micro_auc": auc_from_ranks(y_true.ravel().astype(bool), y_score.ravel()),
        "micro_auc_ci": _pair(boot.micro_ci),
        "macro_auc": float(nanmean_or_nan(per_class_auc)),
        "macro_auc_ci": _pair(boot.macro_ci),
        "per_class": per_class,
        "calibration": calibration_summary(y_true, y_score, labels, n_bins),
        "subgroups": subgroup_table(y_true, y_score, predictions),
        "bootstrap": {
            "n_resamples": int(n_resamples),
            "unit": "patient",
            "seed": int(seed),
            "level": float(level),
        },
    }


def _threshold_table(
    thresholds: Mapping[str, Mapping[str, float]], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    missing = [label for label in labels if label not in thresholds]
    if missing:
        raise ConfigError(
            f"no validation thresholds for {missing}: choose them with choose_thresholds on the "
            "validation split"
        )
    table = {}
    for label in labels:
        chosen = thresholds[label]
        if not isinstance(chosen, Mapping):
            raise ConfigError(
                f"thresholds[{label!r}] must be a mapping like {{'youden': t, 'f1': t}}"
            )
        table[label] = {rule: _float(chosen.get(rule)) for rule in RULES}
    return table


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)
