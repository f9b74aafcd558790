"""Failure cases: the most confident false positives and false negatives of one run and label."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxr_attention.core.metrics.subgroups import age_bands

ALL = "all"


def subgroup_options(predictions: pd.DataFrame) -> list[str]:
    """ "all", then "sex: M", "view: PA", "age: 40-59", ... for the values present."""
    options = [ALL]
    for column in ("sex", "view"):
        if column in predictions:
            options += [
                f"{column}: {v}" for v in sorted(predictions[column].dropna().astype(str).unique())
            ]
    if "age" in predictions:
        options += [f"age: {band}" for band in sorted(set(age_bands(predictions["age"])))]
    return options


def in_subgroup(predictions: pd.DataFrame, subgroup: str) -> pd.Series:
    """Boolean mask of the rows in `subgroup` (one of `subgroup_options`)."""
    if subgroup == ALL or ": " not in subgroup:
        return pd.Series(True, index=predictions.index)
    column, value = subgroup.split(": ", 1)
    if column == "age":
        return pd.Series(age_bands(predictions["age"]) == value, index=predictions.index)
    return predictions[column].astype(str) == value


@dataclass(frozen=True)
class Failures:
    false_positives: pd.DataFrame  # truth 0, score >= threshold, highest score first
    false_negatives: pd.DataFrame  # truth 1, score < threshold, lowest score first
    threshold: float


def failure_cases(
    predictions: pd.DataFrame,
    label: str,
    threshold: float,
    subgroup: str = ALL,
    score_range: tuple[float, float] = (0.0, 1.0),
    count: int = 8,
) -> Failures:
    """The `count` most confident errors for `label` at the validation `threshold`, filtered."""
    truth = predictions[f"y_true_{label}"].to_numpy()
    score = predictions[f"y_score_{label}"].to_numpy()
    in_range = (score >= score_range[0]) & (score <= score_range[1])
    keep = in_subgroup(predictions, subgroup).to_numpy() & in_range
    columns = [c for c in ("image_id", "patient_id", "sex", "age", "view") if c in predictions]
    table = predictions[columns].assign(score=score, truth=truth)
    fp = table[keep & (truth == 0) & (score >= threshold)].sort_values("score", ascending=False)
    fn = table[keep & (truth == 1) & (score < threshold)].sort_values("score", ascending=True)
    return Failures(fp.head(count), fn.head(count), threshold)


def label_threshold(
    metrics: Mapping, checkpoint_thresholds: Mapping[str, float], label: str
) -> float:
    """The validation (Youden) threshold of `label`: metrics.json's, else the checkpoint's, else 0.5."""
    recorded = ((metrics.get("per_class") or {}).get(label) or {}).get("threshold") or {}
    value = recorded.get("youden")
    if isinstance(value, int | float) and np.isfinite(value):
        return float(value)
    return float(checkpoint_thresholds.get(label, 0.5))


def image_paths(items: pd.DataFrame) -> dict[str, Path]:
    """image_id -> file, from a `DatasetIndex.items` frame."""
    return dict(zip(items["image_id"], map(Path, items["path"]), strict=True))
