"""One backbone column of the Explore page: which checkpoint, its scores, its explanation.

Everything here takes arguments (no session-state reads); scores and maps come through the caches of
`app.models`, so flipping a switch back and forth does not recompute.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from cxr_attention.app import models
from cxr_attention.app.figures import map_alpha
from cxr_attention.app.images import StudyImage
from cxr_attention.app.inference import Analysis, ExplainedMap
from cxr_attention.app.lung_fields import FilmFields, HeldToLungs, hold_to_lungs, model_input
from cxr_attention.app.registry import ModelEntry, Registry
from cxr_attention.core.errors import RadiographError
from cxr_attention.core.explain.overlay import colorize, difference_map, scale_map, shared_scale
from cxr_attention.core.models.class_attention import CLASS_MAP
from cxr_attention.core.trust.ood import OodVerdict

METHODS = {
    "attention": "Attention map",
    "gradcam": "Grad-CAM",
    "integrated_gradients": "Integrated Gradients",
}


@dataclass
class Column:
    """What one column shows."""

    backbone: str
    entry: ModelEntry  # the checkpoint in use
    ablated: bool
    view: np.ndarray  # (S, S) uint8, the model's view
    probabilities: np.ndarray  # (L,) in the entry's label order
    thresholds: dict[str, float]  # validation thresholds per label
    label: str  # label explained
    explanation: ExplainedMap
    note: str = ""  # why the method or label differs from what was asked
    counterpart: ModelEntry | None = None  # the other variant of the same backbone
    # (attention on, attention off) analyses with one method, for the difference panel
    pair: tuple[Analysis, Analysis] | None = None
    pair_method: str = ""
    calibrated: bool = False  # probabilities temperature-scaled on validation
    ood: OodVerdict | None = None  # None: the checkpoint does not describe its training films
    lungs: HeldToLungs | None = None  # the map held to the film's lung fields, when asked for

    @property
    def unlike_training(self) -> bool:
        """Whether the image is flagged as unlike the films this model was trained on."""
        return self.ood is not None and self.ood.flagged

    @property
    def labels(self) -> tuple[str, ...]:
        return self.entry.labels

    def positives(self) -> list[tuple[str, float, float]]:
        """(label, probability, threshold) of every label at or above its validation threshold."""
        return [
            (label, float(p), self.thresholds[label])
            for label, p in zip(self.labels, self.probabilities, strict=True)
            if p >= self.thresholds[label]
        ]

    def difference(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Attention on minus off: probabilities (L,) and map (S, S) (None when the two models
        see different sizes), or None without a counterpart."""
        if self.pair is None or self.counterpart is None:
            return None
        on, off = self.pair
        heat = None
        if on.explanation.heat.shape == off.explanation.heat.shape:
            heat = difference_map(on.explanation.heat, off.explanation.heat)
        return on.probabilities - off.probabilities, heat


def pick_entry(registry: Registry, backbone: str, kind: str | None) -> ModelEntry | None:
    """The best checkpoint of `backbone` with attention of `kind` (None: the baseline), or None
    when that variant was never trained."""
    return registry.best(backbone, kind)


def counterpart(registry: Registry, entry: ModelEntry) -> ModelEntry | None:
    """The other side of the attention switch: the baseline for an attention model, the
    backbone's default attention model (the paper's gate when trained) for a baseline."""
    kind = registry.attention_kind(entry.backbone) if entry.kind is None else None
    return None if entry.kind is None and kind is None else registry.best(entry.backbone, kind)


def ablation_words(entry: ModelEntry) -> str:
    """What "ablate attention" does to this model, in a few words."""
    if entry.class_specific:
        return "its class attention term switched off (average pooling of the class maps only)"
    return "every gate set to 1"


def effective_method(entry: ModelEntry, method: str, ablate: bool) -> tuple[str, str]:
    """The method a model can show, and a note when it differs: a baseline (or an ablated model)
    has no attention map, so it shows Grad-CAM instead."""
    if method == "attention" and (not entry.attention or ablate):
        why = "its attention is ablated" if ablate else "it is a baseline without attention"
        return "gradcam", f"no attention map because {why}: showing Grad-CAM"
    return method, ""


def class_agnostic(entry: ModelEntry, method: str) -> bool:
    """Whether the map shown is the same for every label: a gate model's own attention map."""
    return method == "attention" and entry.attention and not entry.class_specific


def colorbar_title(entry: ModelEntry, label: str, explained: ExplainedMap) -> str:
    """What a map's colour measures: the gate, the label's probability, or the method's value."""
    if explained.method != "attention":
        return "map"
    return f"P({label})" if entry.class_specific else "gate"


def map_heading(entry: ModelEntry, label: str, explained: ExplainedMap) -> str:
    """What a map is: a gate's says it serves every label, any other names its label."""
    if class_agnostic(entry, explained.method):
        return "Gate map · one for all labels"
    if explained.method == "attention":
        return f"Class map · {label}"
    return f"{METHODS.get(explained.method, explained.method)} · {label}"


def map_source(explained: ExplainedMap) -> str:
    """Where a map comes from and how fine it is: "stage4 · 8x8 map" ("" when unknown)."""
    h, w = explained.map_size
    grid = f"{h}x{w} map" if h and w else ""
    return " · ".join(x for x in (explained.stage, grid) if x and x != CLASS_MAP)


def map_title(entry: ModelEntry, label: str, explained: ExplainedMap) -> str:
    """A figure title: the heading, and under it the map's source."""
    source = map_source(explained)
    return map_heading(entry, label, explained) + (f"<br><sup>{source}</sup>" if source else "")


def plain_frame(entry: ModelEntry) -> bool:
    """Whether the model's view is the plain view's frame (no prior, or the lung mask), so that
    truth drawn in the plain view sits where it is; a crop's frame is another (no truth drawn)."""
    return entry.lung_prior != "crop"


def needs_fields(entry: ModelEntry, show_lungs: bool) -> bool:
    """Whether scoring a film with `entry` needs its lung fields: to hold the map to them, or
    because the model reads the lung fields alone (a lung prior)."""
    return show_lungs or entry.lung_prior != "none"


def study_fields(study: StudyImage) -> FilmFields:
    """The film's lung fields, found once per film (`app.models.film_fields`)."""
    return models.film_fields(study.digest, study.radiograph)


def analyse(
    entry: ModelEntry,
    study: StudyImage,
    label: str,
    method: str,
    ablate: bool,
    film: FilmFields | None = None,
) -> tuple[np.ndarray, Analysis]:
    """The view of `study` the model of `entry` sees (its lung prior applied with `film`'s fields)
    and the cached analysis of it; `RadiographError` when a model with a lung prior meets a film
    without plausible lung fields."""
    if film is None and entry.lung_prior != "none":
        film = study_fields(study)
    view = model_input(study.pixels, entry.config, film, study.name)
    # a prior model's view depends on the lung model too: a new one makes a new cache entry
    key = study.digest if entry.lung_prior == "none" else f"{study.digest}:{film.model}"
    result = models.analysis(str(entry.checkpoint), entry.mtime, key, label, method, ablate, view)
    return view, result


def build_column(
    registry: Registry,
    backbone: str,
    kind: str | None,
    ablate: bool,
    study: StudyImage,
    label: str,
    method: str,
    with_counterpart: bool,
    show_lungs: bool = False,
    entry: ModelEntry | None = None,
) -> Column | None:
    """Score `study` with `backbone`'s model of attention `kind` (None: the baseline), or with
    `entry` when given; None when no such checkpoint exists. With `show_lungs` the map is held to
    the film's lung fields (when the lung model finds them)."""
    entry = entry or pick_entry(registry, backbone, kind)
    if entry is None:
        return None
    film = study_fields(study) if needs_fields(entry, show_lungs) else None
    ablate = ablate and entry.attention
    notes = []
    if label not in entry.labels:
        notes.append(f"this model does not predict {label}: explaining {entry.labels[0]}")
        label = entry.labels[0]
    used, note = effective_method(entry, method, ablate)
    notes += [note] if note else []
    view, result = analyse(entry, study, label, used, ablate, film)
    if result.explanation.scale == 0.0:
        notes.append(f"the map is zero everywhere: no positive evidence for {label}")
    loaded = models.load_model(str(entry.checkpoint), entry.mtime)
    column = Column(
        backbone,
        entry,
        ablate,
        view,
        result.probabilities,
        loaded.thresholds,
        label,
        result.explanation,
        "; ".join(notes),
        calibrated=loaded.calibrated,
        ood=result.ood,
    )
    if show_lungs and film is not None and film.found:
        shape = (study.radiograph.height, study.radiograph.width)
        column.lungs = hold_to_lungs(result.explanation, film.fields, entry.config, shape)
    other = counterpart(registry, entry)
    if with_counterpart and other is not None and other.labels == entry.labels:
        # One method on both sides: a baseline has no attention map, so the attention method
        # compares Grad-CAM with Grad-CAM.
        both = "gradcam" if used == "attention" else used
        own = result if both == used else analyse(entry, study, label, both, ablate, film)[1]
        theirs = analyse(other, study, label, both, False)[1]
        column.counterpart, column.pair_method = other, both
        column.pair = (own, theirs) if entry.attention else (theirs, own)
    return column


def colour_ranges(columns: list[Column], shared: bool) -> dict[str, tuple[float, float]]:
    """The colour range of each column's map, by backbone.

    Shared: attention maps on their own absolute scale [0, 1] (a gate value, or a class map's
    probability of the label from each place alone, means the same in every model); Grad-CAM and Integrated Gradients on [0, the largest raw value of the columns
    using that method] (`Explanation.scale` undoes the per-map division), so a weaker map looks
    weaker. Not shared: each map stretched over its own range, to show its structure.
    """
    ranges: dict[str, tuple[float, float]] = {}
    for c in columns:
        heat = c.explanation.heat
        if not shared:
            lo, hi = shared_scale([heat]) if c.explanation.method == "attention" else (0.0, 1.0)
        elif c.explanation.method == "attention":
            lo, hi = 0.0, 1.0
        else:
            same = [
                o.explanation.raw for o in columns if o.explanation.method == c.explanation.method
            ]
            lo, hi = 0.0, shared_scale(same)[1]
        ranges[c.backbone] = (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)  # a constant map
    return ranges


def predictions_frame(study: StudyImage, columns: list[Column]) -> pd.DataFrame:
    """One row per (model, label): what the CSV download holds."""
    rows = []
    for c in columns:
        for label, p in zip(c.labels, c.probabilities, strict=True):
            t = c.thresholds[label]
            rows.append(
                {
                    "image": study.name,
                    "run": c.entry.name,
                    "backbone": c.backbone,
                    "attention": c.entry.attention,
                    "attention_kind": c.entry.kind or "none",
                    "ablated": c.ablated,
                    "trained_on": c.entry.source,
                    "label": label,
                    "probability": round(float(p), 6),
                    "calibrated": c.calibrated,
                    "threshold": round(t, 6),
                    "positive": bool(p >= t),
                    "out_of_distribution": None if c.ood is None else c.ood.flagged,
                }
            )
    return pd.DataFrame(rows)


def overlay_png(
    view: np.ndarray, heat: np.ndarray | None, opacity: float, zrange: tuple[float, float]
) -> bytes:
    """The model view with the map over it, as PNG bytes: what the page shows.

    Colours come from `core.explain.overlay.colorize` (inferno over `zrange`); each pixel is
    blended with the page's opacity ramp (`figures.map_alpha`), so the file matches the figure.
    """
    gray = cv2.cvtColor(view, cv2.COLOR_GRAY2RGB).astype(np.float32)
    if heat is None:
        rgb = gray
    else:
        colour = colorize(heat, "inferno", vmin=zrange[0], vmax=zrange[1]).astype(np.float32)
        alpha = opacity * map_alpha(scale_map(heat, zrange[0], zrange[1]))[..., None]
        rgb = (1.0 - alpha) * gray + alpha * colour
    image = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RadiographError("could not encode the overlay as PNG")
    return buffer.tobytes()
