"""The mechanism study as report tables: mechanism x backbone, and every map of every run.

Built from plain data (`StudyEntry`: a run's name, backbone, kind, test macro AUC, its
study.json and its comparison with the baseline), so the comparison report and the app's Compare
page print the same tables from the same figures. The words that go with them:
`core.report.study_words`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cxr_attention.core.models.kinds import KIND_TITLES
from cxr_attention.core.models.registry import describe_backbone
from cxr_attention.core.report.tables import Against, Cell, Estimate, PValue, Table

ALPHA = 0.05
IOBB = "0.25"  # the IoBB threshold the summary table shows (all three are in study.json)


@dataclass(frozen=True)
class Versus:
    """An attention run against its backbone's baseline on the same test films."""

    macro_difference: float  # macro AUC, attention - baseline
    macro_ci: tuple[float, float] | None  # paired bootstrap 95% CI, None when not computed
    better: int  # labels significantly better (DeLong, Holm-adjusted p < ALPHA)
    worse: int  # ... significantly worse
    tested: int  # labels DeLong could test
    smallest_p: float  # smallest Holm-adjusted p (NaN when none tested)


def versus_from_labels(
    macro_difference: float,
    macro_ci: tuple[float, float] | None,
    per_label: Sequence[tuple[str, float, float]],
) -> Versus:
    """`Versus` from (label, AUC difference, Holm-adjusted DeLong p) per label."""
    tested = [(d, p) for _, d, p in per_label if not (math.isnan(d) or math.isnan(p))]
    return Versus(
        macro_difference,
        macro_ci,
        better=sum(p < ALPHA and d > 0 for d, p in tested),
        worse=sum(p < ALPHA and d < 0 for d, p in tested),
        tested=len(tested),
        smallest_p=min((p for _, p in tested), default=math.nan),
    )


@dataclass(frozen=True)
class StudyEntry:
    """One run as the study tables see it."""

    name: str
    backbone: str
    kind: str | None  # None: the baseline
    macro_auc: float  # test macro AUC (metrics.json)
    study: dict[str, Any]  # study.json
    versus: Versus | None = None  # None for a baseline or an unpaired run

    @property
    def backbone_title(self) -> str:
        return describe_backbone(self.backbone).title

    @property
    def mechanism(self) -> str:
        return KIND_TITLES[self.kind] if self.kind else "baseline"

    @property
    def title(self) -> str:
        return f"{self.backbone_title} + {self.mechanism}" if self.kind else self.backbone_title

    def own(self) -> tuple[str, dict[str, Any]] | None:
        """(key, entry) of the model's own map shown by default, None for a baseline."""
        key = self.study.get("own_map")
        return (key, self.study["maps"][key]) if key else None

    def own_maps(self) -> list[tuple[str, dict[str, Any]]]:
        """Every own map (each gate of a gate model), the default one first."""
        own = self.own()
        rest = [
            (k, m) for k, m in self.study["maps"].items() if m.get("own") and own and k != own[0]
        ]
        return ([own] if own else []) + rest

    def gradcam(self) -> tuple[str, dict[str, Any]] | None:
        return next(
            ((k, m) for k, m in self.study["maps"].items() if m["method"] == "gradcam"), None
        )


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def overall(entry: dict[str, Any], which: str, metric: str) -> float:
    """A pooled figure of one map ("localization") or its control ("random")."""
    summary = entry[which]["overall"]
    if metric.startswith("iobb@"):
        return _num((summary.get("iobb_acc") or {}).get(metric.removeprefix("iobb@")))
    return _num(summary.get(metric))


def against(entry: dict[str, Any] | None, metric: str) -> Cell:
    if entry is None:
        return None
    return Against(overall(entry, "localization", metric), overall(entry, "random", metric))


def drop_against(entry: dict[str, Any] | None) -> Cell:
    if entry is None:
        return None
    faith = entry["faithfulness"]
    return Against(_num(faith.get("mean_drop")), _num(faith.get("random_mean_drop")))


def _labels_cell(versus: Versus | None) -> Cell:
    if versus is None:
        return None
    return f"{versus.better} / {versus.worse} of {versus.tested}"


def _overhead(cost: dict[str, Any], kind: str | None) -> str:
    if kind is None:
        return f"{cost['latency_ms']:.1f} ms"
    return f"{100 * _num(cost.get('latency_overhead')):+.0f} % ({cost['latency_ms']:.1f} ms)"


def _parameters(cost: dict[str, Any]) -> str:
    share = 100 * cost["attention_parameters"] / max(cost["parameters"], 1)
    return f"{cost['attention_parameters']:,} ({share:.2f} %) of {cost['parameters']:,}"


def study_table(entries: Sequence[StudyEntry]) -> Table:
    """Mechanism x backbone: AUC against the baseline, own map and Grad-CAM against the random
    control, faithfulness against a random region, parameters and latency."""
    table = Table(
        "study",
        "The attention study: mechanism x backbone",
        [
            "backbone",
            "mechanism",
            "test macro AUC",
            "vs baseline [95% CI]",
            "DeLong: labels better / worse",
            "own map: pointing (random)",
            f"own map: IoBB@{IOBB} (random)",
            "own map: energy (random)",
            "Grad-CAM: pointing (random)",
            f"Grad-CAM: IoBB@{IOBB} (random)",
            "Grad-CAM: energy (random)",
            "own map: drop (random region)",
            "Grad-CAM: drop (random region)",
            "attention parameters",
            "CPU latency vs baseline",
        ],
        note=(
            "Own map: the model's own attention (the deepest gate of a spatial or cbam model, the "
            "per-finding map of a class-specific head); every gate is in the next table. Pointing: "
            "the map's maximum inside the truth; random: a random map on the same truth units. "
            f"IoBB@{IOBB}: a detected region's overlap with the truth over its own area exceeds "
            f"{IOBB}. Drop: mean fall of that finding's probability when the map's top region, "
            "the size of the truth, is set to black; in brackets, a region of the same size and "
            "shape at a random place. DeLong: labels with Holm-adjusted p < 0.05. Latency: "
            "median CPU forward pass of one image, a figure on that machine, not a guarantee."
        ),
    )
    for e in entries:
        own = e.own()[1] if e.own() else None
        gradcam = e.gradcam()[1] if e.gradcam() else None
        v = e.versus
        table.rows.append(
            [
                e.backbone_title,
                e.mechanism,
                e.macro_auc,
                None if v is None else Estimate(v.macro_difference, v.macro_ci, signed=True),
                _labels_cell(v),
                *[against(own, m) for m in ("pointing_game", f"iobb@{IOBB}", "energy_in_box")],
                *[against(gradcam, m) for m in ("pointing_game", f"iobb@{IOBB}", "energy_in_box")],
                drop_against(own),
                drop_against(gradcam),
                _parameters(e.study["cost"]) if e.kind else "—",
                _overhead(e.study["cost"], e.kind),
            ]
        )
    return table


def study_maps_table(entries: Sequence[StudyEntry]) -> Table:
    """Every map of every run with its control and the paired tests behind the words."""
    table = Table(
        "study_maps",
        "The attention study: every map against its control",
        [
            "run",
            "map",
            "grid",
            "truth units",
            "pointing",
            "random",
            "× random",
            "McNemar p",
            f"IoBB@{IOBB} (random)",
            "energy (random)",
            "drop",
            "random-region drop",
            "sign-test p",
        ],
        note=(
            "McNemar p: exact test on the truth units where only the map or only the control "
            "points inside. Sign-test p: on the (film, finding) pairs where blanking the map's "
            "region lowers the probability more, or less, than blanking the random region."
        ),
    )
    for e in entries:
        for key, m in e.study["maps"].items():
            pointing = overall(m, "localization", "pointing_game")
            control = overall(m, "random", "pointing_game")
            faith = m["faithfulness"]
            grid = m.get("map_size")
            table.rows.append(
                [
                    e.name,
                    key + (" (own)" if m.get("own") else ""),
                    f"{grid[0]} x {grid[1]}" if grid else None,
                    m["localization"].get("n_boxes"),
                    pointing,
                    control,
                    Estimate(pointing / control if control > 0 else math.nan, digits=1),
                    PValue(_num(m["pointing_vs_random"].get("p"))),
                    against(m, f"iobb@{IOBB}"),
                    against(m, "energy_in_box"),
                    _num(faith.get("mean_drop")),
                    _num(faith.get("random_mean_drop")),
                    PValue(_num(faith.get("p"))),
                ]
            )
    return table


def study_lungs_table(entries: Sequence[StudyEntry]) -> Table | None:
    """Every map held to the films' lung fields (study.json maps.<key>.lungs) beside a random
    map's; None when no study held its maps to the lungs."""
    table = Table(
        "study_lungs",
        "Inside the lungs: where each map peaks against the films' lung fields",
        ["run", "map", "films", "peak inside", "random", "mass inside", "random", "McNemar p"],
        note=(
            "Each film with a finding: does the map's peak lie inside the film's lung fields, and "
            "what share of its mass does; the random control is a map of the same smoothness on "
            "the same films. McNemar p: exact test on the films where only one of the two peaks "
            "inside."
        ),
    )
    for e in entries:
        for key, m in e.study["maps"].items():
            lungs = m.get("lungs")
            if not lungs:
                continue
            ours, control = lungs["map"], lungs["random"]
            table.rows.append(
                [
                    e.name,
                    key + (" (own)" if m.get("own") else ""),
                    ours.get("n"),
                    _num(ours.get("peak_inside")),
                    _num(control.get("peak_inside")),
                    _num(ours.get("mass_inside")),
                    _num(control.get("mass_inside")),
                    PValue(_num((lungs.get("peak_vs_random") or {}).get("p"))),
                ]
            )
    return table if table.rows else None
