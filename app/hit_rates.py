"""How often a map's peak lands on the lesion across the test films, not only on the film shown.

From a run's study.json (`cxr-attention study`, shipped with the demo zoo): per map and label, the
pointing game over every test film with that finding's truth, beside the random control on the same
films. The Explore page prints it under each map, so that an educator can tell a lucky picture
from a rule; and the page opens on the sample chosen by `median_sample`, a rule, not by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cxr_attention.app.images import Sample
from cxr_attention.app.registry import ModelEntry, Registry
from cxr_attention.core.study import STUDY


@dataclass(frozen=True)
class HitRate:
    """A map's pointing game for one label across the test films, and the random control's."""

    share: float
    n: int  # lesions (truth units) scored
    random: float
    scored_instead: str = ""  # the map the study scored, when it is not the one shown

    def words(self, label: str) -> str:
        subject = f"the peak of {self.scored_instead}" if self.scored_instead else "this map's peak"
        return (
            f"across {self.n} test lesions of {label}, {subject} lands on the lesion "
            f"{self.share:.0%} of the time (random map {self.random:.0%})"
        )


def read_study(entry: ModelEntry) -> dict | None:
    path = Path(entry.run.path) / STUDY
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def map_key(study: dict, own: bool) -> str | None:
    """The study's key of the model's own map (the one the page shows), or of its Grad-CAM."""
    if own:
        return study.get("own_map")
    return next((key for key in study.get("maps", {}) if key.startswith("gradcam:")), None)


def hit_rate(
    entry: ModelEntry, label: str, own: bool = True, stage: str | None = None
) -> HitRate | None:
    """The pointing game of the entry's own map (or its Grad-CAM) for `label`; None when the run
    has no study or no lesion of that label was scored. `stage`: the stage of the map shown; when
    the study scored no map of that stage, the rate is the scored map's, and says so."""
    study = read_study(entry)
    if study is None:
        return None
    shown = f"{'attention' if own else 'gradcam'}:{stage}"
    key = shown if shown in study.get("maps", {}) else map_key(study, own)
    if key is None:
        return None
    entry_map = study["maps"][key]
    # films without lesion outlines (real collections): no localization, see app.lung_rates
    ours = ((entry_map.get("localization") or {}).get("per_class") or {}).get(label) or {}
    control = ((entry_map.get("random") or {}).get("per_class") or {}).get(label) or {}
    if not ours.get("n_boxes") or ours.get("pointing_game") is None:
        return None
    instead = ""
    if stage is not None and key != shown:
        h, w = entry_map.get("map_size") or (0, 0)
        name = "Grad-CAM" if key.startswith("gradcam:") else "map"
        instead = (
            f"this model's {entry_map['stage']} {name} ({h}x{w}; the study scored that one, not "
            f"this {stage} map)"
        )
    return HitRate(
        float(ours["pointing_game"]),
        int(ours["n_boxes"]),
        float(control["pointing_game"]),
        instead,
    )


def class_map_rates(registry: Registry) -> dict[str, float]:
    """{label: pointing game of the best class-specific model's own map}, from its study; {}
    without one."""
    for backbone in registry.class_specific_backbones():
        entry = registry.best(backbone, "class")
        study = read_study(entry) if entry else None
        key = map_key(study, True) if study else None
        if key:
            per_class = (study["maps"][key].get("localization") or {}).get("per_class") or {}
            return {
                label: float(v["pointing_game"])
                for label, v in per_class.items()
                if v.get("n_boxes") and v.get("pointing_game") is not None
            }
    return {}


def median_sample(samples: list[Sample], rates: dict[str, float]) -> tuple[Sample | None, str]:
    """The sample whose finding's class-map hit rate is the median among the samples with one
    finding (the lower median for an even count), and the caption that says so; (None, "") when
    no sample's finding has a rate."""
    rated = sorted(
        (s for s in samples if len(s.labels) == 1 and s.labels[0] in rates),
        key=lambda s: (rates[s.labels[0]], s.name),
    )
    if not rated:
        return None, ""
    chosen = rated[(len(rated) - 1) // 2]
    rate = rates[chosen.labels[0]]
    return chosen, (
        f"Opened on the sample whose finding ({chosen.labels[0]}) the class map finds at the median "
        f"rate of the samples' findings: {rate:.0%} of the test films. A typical picture, chosen "
        "by that rule, not the best one."
    )
