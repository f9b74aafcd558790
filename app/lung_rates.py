"""How often each map of a run peaks inside the lung fields across the held-out films, beside a
random map: the in-lung figures of `cxr-attention study` (study.json, maps.<key>.lungs) and of
`cxr-attention localize --truth lungs` (localization_lungs.json), as the pages show them.

On films without lesion outlines (real collections) these are the figures that say where a map
looks: the pointing game with the lung fields as the truth (`core.explain.lung_scores`). Compare
and Localization show them per model, the backbones side by side; Explore prints the rate of the
map it draws under it, as it prints the lesion hit rate for the phantom's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

STUDY_SOURCE, LOCALIZE_SOURCE = "study", "localize"
METRICS = {  # key of a LungRate -> what it is, in a few words
    "peak_inside": "Peak inside the lungs (share of films)",
    "mass_inside": "Share of the map's mass inside the lungs (mean)",
    "flagged": "Peak outside the lungs and their edge (share of films)",
}


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


@dataclass(frozen=True)
class LungRate:
    """One map of one run held to the films' lung fields, beside the random map on the same films."""

    run: str
    map_key: str  # "attention:class", "attention:stage4", "gradcam:stage4"
    own: bool  # the model's own attention map (not a post-hoc explanation)
    source: str  # STUDY_SOURCE or LOCALIZE_SOURCE
    n: int  # (film, finding) pairs scored
    peak_inside: float
    random_peak_inside: float
    mass_inside: float
    random_mass_inside: float
    flagged: float
    random_flagged: float
    p: float  # exact McNemar test of the peaks against the random map's, two-sided
    fields: str = ""  # where the lung fields came from, in words
    label: str = ""  # the label these figures are of ("" for all the run's labels)

    @property
    def short_map(self) -> str:
        """ "own map (class)", "own gate (stage4)", "Grad-CAM (stage4)": a chart's row label."""
        method, _, stage = self.map_key.partition(":")
        if method == "attention":
            return "own map (class)" if stage == "class" else f"own gate ({stage})"
        return self.map_words

    @property
    def map_words(self) -> str:
        """ "its class map", "its gate (stage4)", "Grad-CAM (stage4)"."""
        method, _, stage = self.map_key.partition(":")
        if method == "attention":
            return "its class map" if stage == "class" else f"its gate ({stage})"
        name = {"gradcam": "Grad-CAM", "integrated_gradients": "Integrated Gradients"}
        return f"{name.get(method, method)} ({stage})" if stage else name.get(method, method)

    def value(self, metric: str) -> float:
        return float(getattr(self, metric))

    def random_value(self, metric: str) -> float:
        return float(getattr(self, f"random_{metric}"))

    def words(self, subject: str = "this map's peak") -> str:
        """One sentence: the rate across the films, the random map's beside it."""
        of = f" with {self.label}" if self.label else ""
        return (
            f"across {self.n} held-out films{of}, {subject} lies inside the lungs "
            f"{self.peak_inside:.0%} of the time (random map {self.random_peak_inside:.0%}); "
            f"{self.mass_inside:.0%} of its mass lies inside (random map "
            f"{self.random_mass_inside:.0%})"
        )


def _rate(run: str, key: str, own: bool, source: str, section: Mapping, fields: str, label=""):
    ours, control = section.get("map") or {}, section.get("random") or {}
    if not ours.get("n"):
        return None
    return LungRate(
        run,
        key,
        own,
        source,
        int(ours["n"]),
        _num(ours.get("peak_inside")),
        _num(control.get("peak_inside")),
        _num(ours.get("mass_inside")),
        _num(control.get("mass_inside")),
        _num(ours.get("flagged")),
        _num(control.get("flagged")),
        _num((section.get("peak_vs_random") or {}).get("p")),
        fields,
        label,
    )


def study_rates(run: str, study: Mapping[str, Any] | None, label: str = "") -> list[LungRate]:
    """Every map of study.json with in-lung figures (the model's own first, as the study lists
    them); of one `label` when given (per_class), else over all the run's labels."""
    if not study:
        return []
    fields = str((study.get("lungs") or {}).get("source") or "")
    rates = []
    for key, entry in (study.get("maps") or {}).items():
        section = entry.get("lungs") or {}
        if label:
            section = (section.get("per_class") or {}).get(label) or {}
        rate = _rate(run, key, bool(entry.get("own")), STUDY_SOURCE, section, fields, label)
        if rate is not None:
            rates.append(rate)
    return rates


def localize_rates(run: str, report: Mapping[str, Any] | None) -> list[LungRate]:
    """The one map of localization_lungs.json, as a rate ([] without one)."""
    if not report or report.get("truth") != "lungs":
        return []
    method, stage = str(report.get("method") or ""), str(report.get("map_stage") or "")
    key = f"{method}:{stage}"
    own = method == "attention"
    fields = str((report.get("lungs") or {}).get("source") or "")
    rate = _rate(run, key, own, LOCALIZE_SOURCE, report, fields)
    return [rate] if rate is not None else []


def shown_rate(
    run: str, study: Mapping[str, Any] | None, label: str, own: bool, stage: str | None
) -> tuple[LungRate | None, str]:
    """The in-lung rate for `label` of the map a page draws (the model's own map, or Grad-CAM,
    at `stage`) and the words that name its subject; when the study scored no map of that stage,
    the rate of the map it scored (its own map, or its Grad-CAM) and words that say so. (None, "")
    without one."""
    from cxr_attention.app.hit_rates import map_key

    if not study:
        return None, ""
    rates = {r.map_key: r for r in study_rates(run, study, label)}
    shown = f"{'attention' if own else 'gradcam'}:{stage}"
    key = shown if shown in rates else map_key(dict(study), own)
    rate = rates.get(key)
    if rate is None:
        return None, ""
    if stage is None or key == shown:
        return rate, "this map's peak"
    return rate, f"the peak of {rate.map_words} (the map the study scored, not this {stage} one)"


def rates_frame(rates: Sequence[LungRate], titles: Mapping[str, str]) -> pd.DataFrame:
    """One row per (run, map): the figures and the random map's beside them."""
    rows = []
    for rate in rates:
        rows.append(
            {
                "model": titles.get(rate.run, rate.run),
                "map": ("own: " if rate.own else "") + rate.map_key,
                "from": rate.source,
                "films": rate.n,
                "peak inside lungs": rate.peak_inside,
                "random: peak inside": rate.random_peak_inside,
                "mass inside lungs": rate.mass_inside,
                "random: mass inside": rate.random_mass_inside,
                "peak outside (flagged)": rate.flagged,
                "McNemar p": rate.p,
            }
        )
    return pd.DataFrame(rows)


def teaching_words(
    prior: Sequence[LungRate], teaching: Sequence[LungRate], prior_title: str, teaching_title: str
) -> str:
    """One paragraph: the same map of the model with the lung prior and of its teaching twin
    without it, side by side ("" when they share no map)."""
    theirs = {r.map_key: r for r in teaching}
    shared = [(r, theirs[r.map_key]) for r in prior if r.map_key in theirs]
    if not shared:
        return ""
    own = next(((a, b) for a, b in shared if a.own), shared[0])
    a, b = own

    def reads(rate: LungRate) -> str:
        return (
            f"{rate.map_words} peaks inside the lungs on {rate.peak_inside:.0%} of {rate.n} "
            f"held-out films and outside them and their edge on {rate.flagged:.0%} (random map "
            f"{rate.random_peak_inside:.0%} inside)"
        )

    return (
        f"**{teaching_title}** sees the whole film: {reads(b)}. **{prior_title}** reads the lung "
        f"fields alone: {reads(a)}. Same backbone, same attention: the difference is what the "
        "model was allowed to see."
    )
