"""Tables and curves for the Compare page, from evaluated run folders (metrics.json and
predictions.csv). The statistics are core's: `core.metrics.delong`, `core.metrics.auc`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.registry import ModelEntry
from core.metrics import compare_runs_delong, roc_curve_points
from core.report.words import attention_effect


@dataclass
class Evaluated:
    """One evaluated run: its registry entry, metrics.json and predictions.csv."""

    entry: ModelEntry
    metrics: dict[str, Any]
    predictions: pd.DataFrame

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def labels(self) -> list[str]:
        return list(self.metrics.get("labels") or self.entry.labels)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def format_auc(auc: Any, ci: Any) -> str:
    """ "0.812 [0.790, 0.834]"; "n/a" for an undefined AUC."""
    value = _num(auc)
    if math.isnan(value):
        return "n/a"
    if isinstance(ci, list | tuple) and len(ci) == 2 and not any(map(math.isnan, map(_num, ci))):
        return f"{value:.3f} [{_num(ci[0]):.3f}, {_num(ci[1]):.3f}]"
    return f"{value:.3f}"


def auc_table(runs: Sequence[Evaluated]) -> pd.DataFrame:
    """Rows: every label, then micro and macro; columns: runs; cells: AUC [95% CI]."""
    labels: list[str] = []
    for run in runs:
        labels += [label for label in run.labels if label not in labels]
    table: dict[str, list[str]] = {}
    for run in runs:
        per_class = run.metrics.get("per_class") or {}
        column = [
            format_auc(per_class.get(label, {}).get("auc"), per_class.get(label, {}).get("auc_ci"))
            for label in labels
        ]
        column.append(format_auc(run.metrics.get("micro_auc"), run.metrics.get("micro_auc_ci")))
        column.append(format_auc(run.metrics.get("macro_auc"), run.metrics.get("macro_auc_ci")))
        table[run.name] = column
    return pd.DataFrame(table, index=[*labels, "micro AUC", "macro AUC"])


def attention_pairs(runs: Sequence[Evaluated]) -> list[tuple[Evaluated, Evaluated]]:
    """(attention, baseline) pairs of the same backbone and label list, best validation AUC first."""
    pairs = []
    for run in runs:
        if not run.entry.attention:
            continue
        partners = [
            r
            for r in runs
            if not r.entry.attention
            and r.entry.backbone == run.entry.backbone
            and r.labels == run.labels
        ]
        if partners:
            pairs.append((run, partners[0]))
    return pairs


def paired_delong(attention: Evaluated, baseline: Evaluated) -> pd.DataFrame:
    """Per label: both AUCs, the difference (attention - baseline), DeLong p and Holm-adjusted p
    (`core.metrics.compare_runs_delong`; `RunError` when the runs scored different images)."""
    table = compare_runs_delong(attention.predictions, baseline.predictions, attention.labels)
    table = table.reset_index().rename(columns={"auc_a": "auc_attention", "auc_b": "auc_baseline"})
    table.attrs["n_images"] = len(attention.predictions)
    return table


def effect_in_words(attention: Evaluated, baseline: Evaluated, table: pd.DataFrame) -> str:
    """The pair's result as one paragraph (`core.report.words.attention_effect`)."""
    return attention_effect(
        attention.entry.title.removesuffix(" + attention"),
        table.attrs["n_images"],
        float(attention.metrics["macro_auc"]),
        float(baseline.metrics["macro_auc"]),
        list(zip(table["label"], table["difference"], table["p_holm"], strict=True)),
    )


def roc_curves(
    runs: Sequence[Evaluated], label: str
) -> list[tuple[str, np.ndarray, np.ndarray, float]]:
    """(run name, fpr, tpr, auc) for every run that predicts `label` and has both classes."""
    curves = []
    for run in runs:
        if label not in run.labels:
            continue
        curve = roc_curve_points(
            run.predictions[f"y_true_{label}"], run.predictions[f"y_score_{label}"]
        )
        if not math.isnan(curve.auc):
            curves.append((run.entry.title + f" · {run.name}", curve.fpr, curve.tpr, curve.auc))
    return curves


def testable_labels(runs: Sequence[Evaluated]) -> list[str]:
    """Labels with positive and negative test images in at least one run (an ROC curve exists)."""
    found: list[str] = []
    for run in runs:
        for label in run.labels:
            column = run.predictions.get(f"y_true_{label}")
            if label not in found and column is not None and column.nunique() == 2:
                found.append(label)
    return found


def reliability_curves(
    runs: Sequence[Evaluated], label: str
) -> list[tuple[str, list[float], list[float], bool]]:
    """Reliability diagram points from metrics.json per run: (name, mean score per bin, fraction
    positive, before_scaling). Each run's calibrated curve (`calibration.reliability`) comes first;
    a run whose checkpoint has temperatures is followed by its curve before scaling
    (`calibration.before_scaling.reliability`), which `figures.calibration_figure` draws dashed in
    the same colour."""
    curves = []
    for run in runs:
        calibration = run.metrics.get("calibration") or {}
        name = f"{run.entry.title} · {run.name}"
        curve = (calibration.get("reliability") or {}).get(label)
        if not (curve and curve.get("mean_score")):
            continue
        scaled = bool(calibration.get("temperature"))
        suffix = " · calibrated" if scaled else ""
        curves.append((name + suffix, curve["mean_score"], curve["fraction_positive"], False))
        before = ((calibration.get("before_scaling") or {}).get("reliability") or {}).get(label)
        if scaled and before and before.get("mean_score"):
            curves.append(
                (
                    name + " · before scaling",
                    before["mean_score"],
                    before["fraction_positive"],
                    True,
                )
            )
    return curves


def subgroup_frame(runs: Sequence[Evaluated]) -> pd.DataFrame:
    """Macro AUC (and n) per subgroup (sex, age band, view) and run, from metrics.json."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for run in runs:
        for group, values in (run.metrics.get("subgroups") or {}).items():
            for value, stats in (values or {}).items():
                auc = _num(stats.get("macro_auc"))
                cell = "n/a" if math.isnan(auc) else f"{auc:.3f}"
                rows.setdefault((group, str(value)), {})[run.name] = (
                    f"{cell} (n={stats.get('n', 0)})"
                )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["subgroup", "value"])
    return frame.fillna("")


def same_test_data(runs: Sequence[Evaluated]) -> bool:
    """True when every run was evaluated on one dataset (same fingerprint) and split."""
    keys = {
        ((r.metrics.get("data") or {}).get("fingerprint"), r.metrics.get("split")) for r in runs
    }
    return len(keys) <= 1
