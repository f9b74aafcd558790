"""The same AUC summaries within subgroups: sex, age band and view position.

A model can be good on average and poor for one group (e.g. AP films, taken of sicker patients in
bed, or the oldest patients). Subgroups with one class only for a label simply leave that label out
of their macro AUC; a subgroup with no label having both values has NaN AUCs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics._checks import label_matrices
from cxr_attention.core.metrics.auc import auc_from_ranks, nanmean_or_nan

# Lower edges (years) and names of the age bands; the last band is open-ended.
AGE_BAND_EDGES: tuple[float, ...] = (0.0, 20.0, 40.0, 60.0, 80.0)
AGE_BANDS: tuple[str, ...] = ("<20", "20-39", "40-59", "60-79", "80+")
UNKNOWN = "unknown"


def age_bands(ages: ArrayLike) -> np.ndarray:
    """Age band name for each age in years: "<20", "20-39", "40-59", "60-79", "80+", or "unknown"
    for NaN (ChestX-ray14 has a few impossible ages, which the reader turns into NaN)."""
    ages = np.asarray(ages, dtype=np.float64)
    index = np.searchsorted(AGE_BAND_EDGES, ages, side="right") - 1
    names = np.array(AGE_BANDS, dtype=object)[np.clip(index, 0, len(AGE_BANDS) - 1)]
    names[np.isnan(ages)] = UNKNOWN
    return names


def subgroup_auc(
    y_true: ArrayLike, y_score: ArrayLike, groups: ArrayLike, order: Sequence[str] | None = None
) -> dict[str, dict[str, float | int]]:
    """Micro and macro AUC within each subgroup.

    Args:
        y_true, y_score: (n, L), labels in order.
        groups: (n,) the subgroup of each image; missing values (NaN/None) form "unknown".
        order: group names to list first, in this order (others follow, sorted).
    Returns:
        {group: {"n": images, "micro_auc": x, "macro_auc": x}}.
    """
    truth, score = label_matrices(y_true, y_score)
    keys = pd.Series(np.asarray(groups, dtype=object)).fillna(UNKNOWN).astype(str).to_numpy()
    if keys.size != truth.shape[0]:
        raise ConfigError(f"{keys.size} group values for {truth.shape[0]} images")
    present = set(keys)
    first = [g for g in (order or ()) if g in present]
    names = first + sorted(present - set(first), key=lambda g: (g == UNKNOWN, g))
    table: dict[str, dict[str, float | int]] = {}
    for name in names:
        rows = keys == name
        t, s = truth[rows], score[rows]
        per_class = [auc_from_ranks(t[:, k], s[:, k]) for k in range(t.shape[1])]
        table[name] = {
            "n": int(rows.sum()),
            "micro_auc": auc_from_ranks(t.ravel(), s.ravel()),
            "macro_auc": float(nanmean_or_nan(np.array(per_class))),
        }
    return table


def subgroup_table(
    y_true: ArrayLike, y_score: ArrayLike, metadata: pd.DataFrame
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Subgroup AUCs by sex, age band and view, from a frame with `sex`, `age`, `view` columns
    (one row per image, aligned with y_true). A column that is absent gives an empty {} entry."""
    table: dict[str, dict[str, dict[str, float | int]]] = {}
    for key, column, order in (
        ("sex", "sex", ("M", "F")),
        ("age_band", "age", AGE_BANDS),
        ("view", "view", ("PA", "AP")),
    ):
        if column not in metadata:
            table[key] = {}
            continue
        values = metadata[column].to_numpy()
        if key == "age_band":
            values = age_bands(pd.to_numeric(metadata[column], errors="coerce").to_numpy())
        table[key] = subgroup_auc(y_true, y_score, values, order)
    return table
