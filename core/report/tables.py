"""Report tables as plain data: cells are numbers, estimates with intervals, p-values or text.

The renderers (`render_md`, `render_html`) only format what these functions compute, so the
Markdown and the HTML report can never disagree, and `comparison.json` holds the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cxr_attention.core.models.kinds import ATTENTION_KINDS
from cxr_attention.core.models.registry import PAPER_BACKBONES
from cxr_attention.core.report.paper import PUBLISHED_MACRO_AUC, paper_result
from cxr_attention.core.report.results import RunResult


def _nan(x: Any) -> float:
    """A JSON number (null = NaN) as a float."""
    return float("nan") if x is None else float(x)


@dataclass(frozen=True)
class Estimate:
    """A value with an optional 95% interval; `signed` prints a + for differences."""

    value: float
    ci: tuple[float, float] | None = None
    signed: bool = False
    digits: int = 3

    def text(self) -> str:
        if math.isnan(self.value):
            return "—"
        sign = "+" if self.signed else ""
        out = f"{self.value:{sign}.{self.digits}f}"
        if self.ci is not None and not any(math.isnan(v) for v in self.ci):
            lo, hi = self.ci
            out += f" [{lo:{sign}.{self.digits}f}, {hi:{sign}.{self.digits}f}]"
        return out

    def as_json(self) -> dict[str, Any]:
        return {"value": self.value, "ci": list(self.ci) if self.ci else None}


@dataclass(frozen=True)
class PValue:
    """A p-value, printed to 3 decimals or as <0.001."""

    value: float

    def text(self) -> str:
        if math.isnan(self.value):
            return "—"
        return "<0.001" if self.value < 0.001 else f"{self.value:.3f}"

    def as_json(self) -> float:
        return self.value


@dataclass(frozen=True)
class Against:
    """A figure beside its control's, printed "0.620 (0.050)"."""

    value: float
    control: float
    digits: int = 3

    def text(self) -> str:
        def one(x: float) -> str:
            return "—" if math.isnan(x) else f"{x:.{self.digits}f}"

        return f"{one(self.value)} ({one(self.control)})"

    def as_json(self) -> dict[str, float]:
        return {"value": self.value, "control": self.control}


Cell = str | int | float | Estimate | PValue | Against | None


def cell_text(cell: Cell) -> str:
    """How a cell prints in both renderers."""
    if cell is None:
        return "—"
    if isinstance(cell, Estimate | PValue | Against):
        return cell.text()
    if isinstance(cell, float):
        return "—" if math.isnan(cell) else f"{cell:.3f}"
    return str(cell)


def cell_json(cell: Cell) -> Any:
    if isinstance(cell, Estimate | PValue | Against):
        return cell.as_json()
    return cell


@dataclass
class Table:
    """A titled table; `key` is a stable identifier (used in comparison.json and HTML anchors)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "note": self.note,
            "columns": self.columns,
            "rows": [[cell_json(c) for c in row] for row in self.rows],
        }


def run_order(results: Sequence[RunResult]) -> list[RunResult]:
    """Paper backbones first in the paper's order, then others; within a backbone the baseline,
    then the attention kinds in `ATTENTION_KINDS` order (the paper's spatial gate first)."""
    paper = list(PAPER_BACKBONES)

    def key(r: RunResult) -> tuple:
        rank = paper.index(r.backbone) if r.backbone in paper else len(paper)
        kind = 0 if r.kind is None else 1 + ATTENTION_KINDS.index(r.kind)
        return (rank, r.backbone, kind, r.name)

    return sorted(results, key=key)


def _auc_estimate(metrics: dict[str, Any], key: str) -> Estimate:
    ci = metrics.get(f"{key}_ci") or [None, None]
    return Estimate(_nan(metrics.get(key)), (_nan(ci[0]), _nan(ci[1])))


def _class_auc(result: RunResult, label: str) -> Estimate | None:
    entry = result.metrics.get("per_class", {}).get(label)
    if entry is None:
        return None
    ci = entry.get("auc_ci") or [None, None]
    return Estimate(_nan(entry.get("auc")), (_nan(ci[0]), _nan(ci[1])))


def auc_table(results: Sequence[RunResult], labels: Sequence[str]) -> Table:
    """Per-class AUC per variant with 95% patient-bootstrap CIs, then micro and macro AUC."""
    table = Table(
        "auc",
        "AUC per class and variant (95% CI, bootstrap by patient)",
        ["finding", *[r.name for r in results]],
        note="— : not in the run's label set, or only one class present in the split.",
    )
    for label in labels:
        table.rows.append([label, *[_class_auc(r, label) for r in results]])
    table.rows.append(["micro-AUC", *[_auc_estimate(r.metrics, "micro_auc") for r in results]])
    table.rows.append(["macro-AUC", *[_auc_estimate(r.metrics, "macro_auc") for r in results]])
    table.rows.append(["images / patients", *[_counts(r) for r in results]])
    return table


def _counts(result: RunResult) -> str:
    return f"{result.metrics.get('n_images', '?')} / {result.metrics.get('n_patients', '?')}"


def runs_table(results: Sequence[RunResult]) -> Table:
    """Which run is which: backbone, attention kind and where, image size, data, split."""
    table = Table(
        "runs",
        "Runs",
        [
            "run",
            "backbone",
            "attention",
            "image size",
            "labels",
            "pretrained",
            "data",
            "split",
            "images",
        ],
    )
    for r in results:
        model = r.metrics.get("model", {})
        stages = model.get("attention_stages") or []
        attention = r.mechanism if r.attention else "no"
        if r.kind in ("spatial", "cbam") and stages:
            attention += f", stages {', '.join(map(str, stages))}"
        table.rows.append(
            [
                r.name,
                r.backbone,
                attention,
                model.get("image_size"),
                len(r.labels),
                model.get("pretrained") or "no",
                r.source,
                r.split,
                r.metrics.get("n_images"),
            ]
        )
    return table


EARLY_LIFT = (
    ("pauc_fpr10", "pAUC (FPR ≤ 0.1, standardised)"),
    ("sens_at_spec90", "sensitivity at 90% specificity"),
    ("sens_at_spec95", "sensitivity at 95% specificity"),
)


def _class_value(result: RunResult, label: str, key: str) -> float | None:
    entry = result.metrics.get("per_class", {}).get(label)
    return None if entry is None else _nan(entry.get(key))


def _mean(values: Sequence[float | None]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return sum(kept) / len(kept) if kept else float("nan")


def early_lift_tables(results: Sequence[RunResult], labels: Sequence[str]) -> list[Table]:
    """Early lift: a summary (mean over classes per variant) and one per-class table per measure."""
    summary = Table(
        "early_lift",
        "Early lift (mean over classes)",
        ["run", *[title for _, title in EARLY_LIFT]],
        note=(
            "Triage works at low false-positive rates. pAUC is McClish-standardised "
            "(0.5 = chance, 1 = perfect within FPR ≤ 0.1)."
        ),
    )
    for r in results:
        summary.rows.append(
            [r.name, *[_mean([_class_value(r, lb, key) for lb in labels]) for key, _ in EARLY_LIFT]]
        )
    tables = [summary]
    for key, title in EARLY_LIFT:
        table = Table(
            f"early_lift_{key}", f"{title} per class", ["finding", *[r.name for r in results]]
        )
        for label in labels:
            table.rows.append([label, *[_class_value(r, label, key) for r in results]])
        tables.append(table)
    return tables


def paper_table(
    results: Sequence[RunResult], differences: dict[str, Estimate] | None = None
) -> Table:
    """The paper's reported micro-AUCs beside ours, per backbone; "with attention" is the paper's
    mechanism, the spatial gate (other kinds are in the study and difference tables).

    `differences` ({backbone: micro-AUC difference with its paired CI}) replaces the plain
    difference of the two runs' micro-AUCs where a paired comparison exists.
    """
    differences = differences or {}
    table = Table(
        "paper",
        "Micro-AUC: the paper's reported values beside ours",
        [
            "backbone",
            "paper: without attention",
            "paper: with attention",
            "paper: difference",
            "ours: without attention",
            "ours: with the spatial gate",
            "ours: difference",
        ],
    )
    sources = {r.source for r in results}
    table.note = "The paper trained on ChestX-ray14 (13 labels, micro-AUC); " + (
        "our runs here used the synthetic phantom, so their numbers are NOT comparable."
        if sources == {"phantom"}
        else "ours are on the split named above."
    )
    backbones = list(dict.fromkeys(r.backbone for r in results))
    for backbone in backbones:
        published = paper_result(backbone)
        ours = {r.kind: r for r in reversed(results) if r.backbone == backbone}  # first run wins
        without = _auc_estimate(ours[None].metrics, "micro_auc") if None in ours else None
        gated = ours.get("spatial")
        with_ = _auc_estimate(gated.metrics, "micro_auc") if gated is not None else None
        diff = differences.get(backbone) or (
            Estimate(with_.value - without.value, signed=True)
            if with_ is not None and without is not None
            else None
        )
        if published is None:
            paper_cells: list[Cell] = ["not in the paper", None, None]
        elif published.micro_auc is None:
            paper_cells = [published.note or "not reported", None, None]
        else:
            paper_cells = [
                published.micro_auc,
                published.micro_auc_attention,
                Estimate(published.difference or float("nan"), signed=True),
            ]
        title = published.title if published else backbone
        table.rows.append([title, *paper_cells, without, with_, diff])
    return table


def published_table() -> Table:
    """Published macro AUCs (14 classes, official split), for context."""
    table = Table(
        "published",
        "Published mean (macro) AUC on the official ChestX-ray14 split, for context",
        ["work", "macro-AUC"],
        note="CheXNet's 0.841 used its own random split and is not comparable.",
    )
    table.rows = [[name, value] for name, value in PUBLISHED_MACRO_AUC]
    return table
