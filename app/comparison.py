"""Tables and curves for the Compare page, from evaluated run folders (metrics.json,
predictions.csv, and study.json where `cxr-attention study` ran). The statistics are core's:
`core.metrics.delong`, `core.metrics.auc`; the study table and its words are the comparison
report's (`core.report.study`, `core.report.study_words`), so page and report say the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cxr_attention.app.registry import TEACHING_SUFFIX, ModelEntry
from cxr_attention.core.errors import CxrError
from cxr_attention.core.metrics import compare_runs_delong, roc_curve_points
from cxr_attention.core.models.kinds import ATTENTION_KINDS, KIND_TITLES
from cxr_attention.core.models.registry import describe_backbone
from cxr_attention.core.report.study import StudyEntry, study_table, versus_from_labels
from cxr_attention.core.report.study_words import study_in_words
from cxr_attention.core.report.tables import cell_text
from cxr_attention.core.report.words import attention_effect
from cxr_attention.core.study import STUDY


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

    @property
    def kind(self) -> str | None:
        """The attention kind ("spatial", "cbam", "class"), None for a baseline."""
        return self.entry.config.kind

    @property
    def title(self) -> str:
        """The backbone and its mechanism, e.g. "MobileNetV2 + class-specific attention (CSRA)"
        (and " · without the lung prior" for a teaching model)."""
        base = describe_backbone(self.entry.backbone).title
        title = f"{base} + {KIND_TITLES[self.kind]}" if self.kind else f"{base} (baseline)"
        return title + (TEACHING_SUFFIX if self.entry.teaching else "")


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
    """Rows: every label, then micro and macro (not for one label: they would repeat its row);
    columns: runs; cells: AUC [95% CI]."""
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
    frame = pd.DataFrame(table, index=[*labels, "micro AUC", "macro AUC"])
    return frame.iloc[:1] if len(labels) == 1 else frame


def attention_pairs(runs: Sequence[Evaluated]) -> list[tuple[Evaluated, Evaluated]]:
    """(attention, baseline) pairs: every attention run, whatever its kind, with the first
    baseline of the same backbone and label list; the paper's spatial gate first per backbone."""
    order = {kind: i for i, kind in enumerate(ATTENTION_KINDS)}
    pairs = []
    for run in sorted(
        (r for r in runs if r.kind is not None),
        key=lambda r: (r.entry.backbone, order[r.kind], r.name),
    ):
        partners = [
            r
            for r in runs
            if r.kind is None
            and r.entry.backbone == run.entry.backbone
            and r.labels == run.labels
            and r.entry.lung_prior == run.entry.lung_prior  # a teaching model has no baseline
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
        attention.title,
        table.attrs["n_images"],
        float(attention.metrics["macro_auc"]),
        float(baseline.metrics["macro_auc"]),
        list(zip(table["label"], table["difference"], table["p_holm"], strict=True)),
    )


def outlines(study: dict[str, Any]) -> bool:
    """Whether a study scored its maps against lesion outlines (False for films without them:
    data.truth "none", no localization per map)."""
    return (study.get("data") or {}).get("truth") != "none"


def read_study(run: Evaluated) -> dict[str, Any] | None:
    """The run's study.json, None when `cxr-attention study` has not been run on it."""
    folder = run.entry.run
    return folder.read_json(STUDY, "study") if folder.has(STUDY) else None


def study_entries(
    runs: Sequence[Evaluated], delong: dict[str, pd.DataFrame]
) -> tuple[list[StudyEntry], list[str]]:
    """The runs with study.json as the study table's entries, and one line per unreadable file.

    `delong` maps an attention run's name to its `paired_delong` table against its baseline; the
    macro AUC difference is that of metrics.json (the page computes no bootstrap interval).
    """
    baselines = {a.name: b for a, b in attention_pairs(runs)}
    entries, problems = [], []
    for run in runs:
        try:
            study = read_study(run)
        except CxrError as exc:
            problems.append(f"{run.name}: {exc}")
            continue
        if study is None or outlines(study) is False:
            continue  # films without lesion outlines: app.lung_sections and the blanking table
        versus = None
        base = baselines.get(run.name)
        if base is not None and run.name in delong:
            table = delong[run.name]
            versus = versus_from_labels(
                _num(run.metrics.get("macro_auc")) - _num(base.metrics.get("macro_auc")),
                None,
                list(zip(table["label"], table["difference"], table["p_holm"], strict=True)),
            )
        entries.append(
            StudyEntry(
                run.name,
                run.entry.backbone,
                run.kind,
                _num(run.metrics.get("macro_auc")),
                study,
                versus,
            )
        )
    return entries, problems


def study_frame(entries: Sequence[StudyEntry]) -> pd.DataFrame:
    """The comparison report's study table (`core.report.study.study_table`) as text cells."""
    table = study_table(entries)
    rows = [[cell_text(c) for c in row] for row in table.rows]
    return pd.DataFrame(rows, columns=table.columns, index=[e.name for e in entries])


def study_words(entries: Sequence[StudyEntry]) -> list[str]:
    """Paragraphs computed from the study table's figures (`core.report.study_words`)."""
    return study_in_words(entries)


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
            curves.append((f"{run.title} · {run.name}", curve.fpr, curve.tpr, curve.auc))
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
        name = f"{run.title} · {run.name}"
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


def open_blanking(run: Evaluated) -> dict[str, Any] | None:
    """The blanking check of a run on films without lesion outlines: RUN/blanking.json, else its
    study.json when that study had no outlines (the same maps.<key>.faithfulness); None without."""
    import json

    from cxr_attention.core.study.open_blanking import BLANKING

    path = run.entry.run.path / BLANKING
    try:
        if path.is_file():
            return json.loads(path.read_text())
        study = read_study(run)
    except (OSError, ValueError, CxrError):
        return None
    return study if study is not None and not outlines(study) else None


def blanking_frame(runs: Sequence[Evaluated]) -> pd.DataFrame:
    """One row per map of every run checked on films without lesion outlines (blanking.json or an
    outline-free study.json): the probability each map's top region takes away against a random
    region of the same shape."""
    rows = []
    for run in runs:
        report = open_blanking(run)
        if report is None:
            continue
        share = report["data"]["region_share"]
        for key, entry in report["maps"].items():
            faith = entry["faithfulness"]
            rows.append(
                {
                    "model": run.entry.title,
                    "map": ("own: " if entry["own"] else "") + key,
                    "films": faith["n"],
                    "P before": faith["mean_probability"],
                    f"drop, map's top {share:.1%}": faith["mean_drop"],
                    "drop, random region": faith["random_mean_drop"],
                    "map larger / random larger": f"{faith['map_larger']} / {faith['random_larger']}",
                    "sign test p": faith["p"],
                }
            )
    return pd.DataFrame(rows)
