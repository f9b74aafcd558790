"""Each attention variant minus its backbone's baseline: paired tests on the images both scored.

A backbone's baseline serves every attention kind of that backbone (spatial gate, cbam, class).

Per class: DeLong's test (difference, its 95% CI and p), p-values Holm-adjusted across the classes
of one pair. Micro and macro AUC: the difference with a paired patient-bootstrap 95% CI (the same
resampled patients for both models).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from cxr_attention.core.metrics.compare import compare_runs_bootstrap, compare_runs_delong
from cxr_attention.core.models.registry import describe_backbone
from cxr_attention.core.report.paper import PAPER_LARGEST_GAINS
from cxr_attention.core.report.results import RunResult
from cxr_attention.core.report.tables import Cell, Estimate, PValue, Table


@dataclass
class PairComparison:
    """One attention run (of some kind) against its backbone's baseline, on their shared images."""

    backbone: str
    baseline: RunResult
    attention: RunResult
    labels: list[str]
    n_images: int
    n_patients: int
    # per label: auc_baseline, auc_attention, difference, ci (lo, hi), p, p_holm, n_positive
    per_class: dict[str, dict[str, float | tuple[float, float] | int]] = field(default_factory=dict)
    # "micro" / "macro": auc_baseline, auc_attention, difference, ci (paired bootstrap)
    overall: dict[str, dict[str, float | tuple[float, float]]] = field(default_factory=dict)
    n_resamples: int = 0

    @property
    def title(self) -> str:
        """The backbone's title, e.g. 'MobileNetV2'."""
        return describe_backbone(self.backbone).title

    @property
    def kind(self) -> str | None:
        return self.attention.kind

    @property
    def variant_title(self) -> str:
        """E.g. 'MobileNetV2 + class-specific attention (CSRA)'."""
        return self.attention.title


def pair_runs(results: Sequence[RunResult]) -> tuple[list[tuple[RunResult, RunResult]], list[str]]:
    """Match each attention run with a baseline of the same backbone evaluated on the same data
    (one baseline may serve several attention kinds).

    Returns the (baseline, attention) pairs and notes about runs left unpaired.
    """
    pairs, notes = [], []
    for att in (r for r in results if r.attention):
        candidates = [
            r
            for r in results
            if not r.attention
            and r.backbone == att.backbone
            and r.fingerprint == att.fingerprint
            and r.split == att.split
        ]
        if not candidates:
            notes.append(f"{att.name}: no baseline of {att.backbone} on the same data to pair with")
            continue
        # prefer a sibling folder (the same sweep), then the same image size
        size = att.metrics.get("model", {}).get("image_size")
        candidates.sort(
            key=lambda r: (
                r.folder.path.parent != att.folder.path.parent,
                r.metrics.get("model", {}).get("image_size") != size,
                r.name,
            )
        )
        pairs.append((candidates[0], att))
    return pairs, notes


def compare_pair(
    baseline: RunResult, attention: RunResult, n_resamples: int = 1000, seed: int = 0
) -> PairComparison:
    """Paired comparison (attention - baseline) on the images both runs scored.

    Raises RunError when the runs scored different images or disagree on the truth.
    """
    labels = [lb for lb in baseline.labels if lb in attention.labels]
    pred_att = _label_columns(attention.predictions(), labels)
    pred_base = _label_columns(baseline.predictions(), labels)
    delong = compare_runs_delong(pred_att, pred_base, labels)
    boot = compare_runs_bootstrap(pred_att, pred_base, labels, n_resamples=n_resamples, seed=seed)
    result = PairComparison(
        attention.backbone,
        baseline,
        attention,
        labels,
        n_images=len(pred_att),
        n_patients=int(pred_att["patient_id"].nunique()),
        n_resamples=n_resamples,
    )
    for label in labels:
        row = delong.loc[label]
        result.per_class[label] = {
            "auc_baseline": float(row["auc_b"]),
            "auc_attention": float(row["auc_a"]),
            "difference": float(row["difference"]),
            "ci": (float(row["ci_low"]), float(row["ci_high"])),
            "p": float(row["p_value"]),
            "p_holm": float(row["p_holm"]),
            "n_positive": int(row["n_positive"]),
        }
    for key in ("micro", "macro"):
        entry = boot[key]
        result.overall[key] = {
            "auc_baseline": entry["auc_b"],
            "auc_attention": entry["auc_a"],
            "difference": entry["difference"],
            "ci": (float(entry["ci"][0]), float(entry["ci"][1])),
        }
    return result


def _label_columns(predictions: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """The columns of `labels` only (two runs may carry different label sets)."""
    keep = ["image_id", "patient_id"]
    keep += [f"y_true_{lb}" for lb in labels] + [f"y_score_{lb}" for lb in labels]
    return predictions[keep]


def difference_table(pair: PairComparison) -> Table:
    """One pair as a table: per class and overall, baseline, attention, difference, p."""
    table = Table(
        "difference_" + re.sub(r"[^A-Za-z0-9_]+", "_", pair.attention.name),
        f"{pair.variant_title} minus its baseline ({pair.attention.name} vs {pair.baseline.name})",
        [
            "finding",
            "positives",
            "AUC baseline",
            f"AUC {pair.attention.mechanism}",
            "difference [95% CI]",
            "DeLong p",
            "Holm p",
            "paper's gain",
        ],
        note=(
            f"{pair.n_images} images of {pair.n_patients} patients scored by both runs. Per class: "
            "DeLong's test, p Holm-adjusted across classes. Micro/macro: paired bootstrap by patient "
            f"({pair.n_resamples} resamples), no p-value."
        ),
    )
    for label in pair.labels:
        row = pair.per_class[label]
        table.rows.append(
            [
                label,
                row["n_positive"],
                row["auc_baseline"],
                row["auc_attention"],
                Estimate(row["difference"], row["ci"], signed=True),
                PValue(row["p"]),
                PValue(row["p_holm"]),
                _paper_gain(label, pair.kind),
            ]
        )
    for key in ("micro", "macro"):
        row = pair.overall[key]
        cells: list[Cell] = [
            f"{key}-AUC",
            None,
            row["auc_baseline"],
            row["auc_attention"],
            Estimate(row["difference"], row["ci"], signed=True),
            None,
            None,
            "",
        ]
        table.rows.append(cells)
    return table


def _paper_gain(label: str, kind: str | None = "spatial") -> Cell:
    """The paper's reported gain for its three largest-gain classes (its spatial gate), else empty."""
    gain = PAPER_LARGEST_GAINS.get(label) if kind == "spatial" else None
    return "" if gain is None else Estimate(gain, signed=True, digits=2)
