"""The Explore page's mechanisms view: for one backbone, the paper's gate, the class-specific map of
the chosen label and Grad-CAM, side by side on one colour scale, against the lesion (issue 17).

The gate (CBAM's spatial attention) is one map for every label; the class map (CSRA) is one map
per label, each place's probability of that label on its own; Grad-CAM is a post-hoc explanation of
one model's logit, divided by its own peak. Everything here takes arguments (no Streamlit); each
panel is an Explore column (`app.columns.build_column`), so scores, maps and the out-of-distribution
verdict come through the same caches as the backbone columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxr_attention.app.columns import Column, build_column, study_fields
from cxr_attention.app.images import StudyImage, truth_in_view
from cxr_attention.app.registry import Registry
from cxr_attention.app.timeline_view import LesionFocus, lesion_focus
from cxr_attention.core.lungs.views import prior_truth
from cxr_attention.core.models.registry import describe_backbone

BASELINE = "baseline"  # the `GRADCAM_OF` value for the baseline (a kind otherwise)
ONE_SCALE = (
    0.0,
    1.0,
)  # gates and class maps are already in [0, 1]; Grad-CAM is divided by its peak
# The attention maps of the row, in order: (kind, heading). The paper's gate and the class map
# always have a panel (a missing model says how to train it); CBAM's only when trained.
ATTENTION_PANELS = (
    ("spatial", "The paper's gate"),
    ("cbam", "Channel + spatial gate (CBAM)"),
    ("class", "Class-specific attention"),
)
GRADCAM_HEADINGS = {
    None: "Grad-CAM of the baseline",
    "spatial": "Grad-CAM of the gate model",
    "cbam": "Grad-CAM of the CBAM model",
    "class": "Grad-CAM of the class model",
}
FIT_FLAGS = {
    "spatial": "--attention",
    "cbam": "--attention-kind cbam --output-stride 16",
    "class": "--attention-kind class --output-stride 16",
}


@dataclass(frozen=True)
class Panel:
    """One map of the row."""

    role: str  # "spatial", "cbam", "class" (the model's own map) or "gradcam"
    heading: str
    column: Column | None  # None: no such model for this backbone
    missing: str = ""  # what to train, when `column` is None
    focus: LesionFocus | None = None  # the map against the lesion; None without truth

    @property
    def colorbar(self) -> str:
        """What the colour means."""
        if self.role == "gradcam":
            return "÷ peak"
        return f"P({self.column.label})" if self.role == "class" and self.column else "gate"


def variant_value(kind: str | None) -> str:
    """A kind as a widget value: "baseline" for None."""
    return BASELINE if kind is None else kind


def variant_kind(value: str) -> str | None:
    return None if value == BASELINE else value


def gradcam_choices(registry: Registry, backbone: str) -> list[str]:
    """The variants of `backbone` whose Grad-CAM the row can show, the baseline first."""
    return [variant_value(k) for k in registry.kinds(backbone)]


def default_gradcam_of(choices: list[str], current: str | None) -> str | None:
    """`current` if the backbone has it, else its baseline, else its first variant."""
    if current in choices:
        return current
    return BASELINE if BASELINE in choices else next(iter(choices), None)


def default_backbone(registry: Registry, current: str | None) -> str | None:
    """`current` if still present, else the first backbone with a class model, else the first."""
    backbones = registry.backbones()
    if current in backbones:
        return current
    return next(iter(registry.class_specific_backbones() + backbones), None)


def build_panels(
    registry: Registry,
    backbone: str,
    study: StudyImage,
    label: str,
    gradcam_of: str,
    show_lungs: bool = False,
) -> list[Panel]:
    """The row for `backbone`: its attention models' own maps of `label` (a gate's is the same
    for every label), then Grad-CAM of the `gradcam_of` variant; each against the lesion, and
    with `show_lungs` against the film's lung fields."""
    panels = []
    for kind, heading in ATTENTION_PANELS:
        column = build_column(
            registry, backbone, kind, False, study, label, "attention", False, show_lungs
        )
        if column is None and kind == "cbam":
            continue
        panels.append(_panel(kind, heading, column, study, _missing(backbone, kind)))
    column = build_column(
        registry,
        backbone,
        variant_kind(gradcam_of),
        False,
        study,
        label,
        "gradcam",
        False,
        show_lungs,
    )
    heading = GRADCAM_HEADINGS[variant_kind(gradcam_of)]
    panels.append(_panel("gradcam", heading, column, study, "No such model for this backbone."))
    return panels


def _panel(
    role: str, heading: str, column: Column | None, study: StudyImage, missing: str
) -> Panel:
    if column is None:
        return Panel(role, heading, None, missing)
    radiograph = study.radiograph
    truth = truth_in_view(
        study.sample, column.label, radiograph.height, radiograph.width, column.entry.image_size
    )
    if truth is not None and column.entry.lung_prior != "none":
        truth = prior_truth(truth, column.entry.config, study_fields(study).fields)
    explained = column.explanation
    focus = None if truth is None else lesion_focus(explained.heat, truth, explained.order)
    return Panel(role, heading, column, "", focus)


def _missing(backbone: str, kind: str) -> str:
    title = describe_backbone(backbone).title
    return (
        f"No {title} model with this attention in the runs folder: train one with "
        f"`cxr-attention fit --backbone {backbone} {FIT_FLAGS[kind]} ...`."
    )


def panel_caption(panel: Panel) -> str:
    """One line under a map: the model's probability of the label, and the map on the lesion."""
    column = panel.column
    if column is None:
        return panel.missing
    p = float(column.probabilities[list(column.labels).index(column.label)])
    heat = column.explanation.heat
    words = [f"P({column.label}) = {p:.2f}", f"map {heat.min():.2f} to {heat.max():.2f}"]
    if panel.focus is not None:
        where = "on the lesion ✓" if panel.focus.points_at_lesion else "away from the lesion"
        words.append(
            f"peak {where}; mean {panel.focus.inside:.2f} on it, {panel.focus.outside:.2f} elsewhere"
        )
    if column.note:
        words.append(column.note)
    return " · ".join(words)


def reading_notes(panels: list[Panel], label: str, truth_labels: tuple[str, ...]) -> list[str]:
    """What the row means, in plain words: one bullet per map, then the scale and the outline."""
    notes = []
    for panel in panels:
        column = panel.column
        if column is None:
            continue
        name, n = column.entry.title, len(column.labels)
        if panel.role == "cbam":
            notes.append(
                f"**{panel.heading}** ({name}) first reweights the feature channels, then gates "
                "the places as the paper's gate does: again one map for all labels."
            )
        elif panel.role == "spatial":
            notes.append(
                f"**{panel.heading}** ({name}) is one map for all {n} labels: choosing another "
                "label leaves it unchanged. It multiplies the features before they are pooled "
                "(1 keeps a place, 0 silences it); learnt without any location label, it "
                "rarely singles out a lesion."
            )
        elif panel.role == "class":
            notes.append(
                f"**The class map** ({name}) belongs to {label} alone: at each place, the "
                f"probability of {label} had the model seen only that place. Another label "
                "shows another map."
            )
        else:
            notes.append(
                f"**Grad-CAM** ({name}) weights the features of its map's stage by the gradient of the "
                f"{label} logit: where the evidence for {label} lies, divided by its own peak "
                "(1 is the strongest place, not a probability)."
            )
    scale = "All maps share one colour scale, 0 to 1, over the model's view"
    if label in truth_labels:
        notes.append(f"{scale}; the green outline is the {label} lesion.")
    elif truth_labels:
        notes.append(
            f"{scale}. This film has no {label} lesion: choose {' or '.join(truth_labels)} to "
            "see the maps against the truth."
        )
    else:
        notes.append(f"{scale}. No lesion is outlined: this image carries no ground truth.")
    return notes
