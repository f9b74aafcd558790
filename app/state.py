"""Session-state keys, named once, and the per-session defaults.

Widgets take their key from here and no `value=`. `init_defaults` runs at the top of a page, before
any widget: it fills missing keys with defaults and re-assigns the others. The re-assignment matters:
Streamlit forgets a widget's value in any run that does not draw the widget (another page, or an
`st.stop()` above it), and a value kept only on the server then no longer matches what the browser
shows. Assigning it through the Session State API makes Streamlit send it to the browser again.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

# The sidebar: what the shown models learnt (when the runs folder holds models of several kinds)
COLLECTION = "sidebar.collection"
PAGE_PREFIXES = ("explore.", "compare.", "failures.", "localization.", "timeline.", "about.")
KEPT_ON_SWITCH = ("explore.source", "explore.upload", "explore.identifiers")  # the user's film

# Explore an image
SOURCE = "explore.source"  # "sample" or "upload"
SAMPLE = "explore.sample"  # file name of the chosen sample
UPLOAD = "explore.upload"  # the file_uploader widget
VIEW = "explore.view"  # "mechanisms" (one backbone: gate, class map, Grad-CAM), "backbones", or
# "prior" (a model with the lung prior beside its teaching twin without it)
MECHANISMS_BACKBONE = "explore.mechanisms.backbone"  # the backbone of the mechanisms view
GRADCAM_OF = "explore.mechanisms.gradcam_of"  # whose Grad-CAM it shows: "baseline" or a kind
BACKBONES = "explore.backbones"  # chosen backbones, one column each
LABEL = "explore.label"  # the label explained
METHOD = "explore.method"  # explanation method (core.explain name)
OPACITY = "explore.opacity"  # overlay opacity in [0, 1]
SHARED_SCALE = "explore.shared_scale"  # one colour scale across columns
SHOW_DIFFERENCE = "explore.difference"  # map and probability difference, attention on minus off
SHOW_IDENTIFIERS = "explore.identifiers"  # reveal DICOM patient identifiers
SHOW_TRUTH = "explore.truth"  # draw ground-truth boxes and masks
SHOW_LUNGS = "explore.lungs"  # draw the lung fields on every map and hold each map to them
PRIOR_PAIR = "explore.prior.pair"  # the teaching model (by run name) of the "prior" view
PRIOR_METHOD = "explore.prior.method"  # the map the "prior" view shows: "attention" or "gradcam"

# Compare models
COMPARE_RUNS = "compare.runs"
COMPARE_LABEL = "compare.label"
COMPARE_MAX_FPR = "compare.max_fpr"

# Failure cases
FAIL_RUN = "failures.run"
FAIL_LABEL = "failures.label"
FAIL_SUBGROUP = "failures.subgroup"
FAIL_SCORES = "failures.scores"
FAIL_COUNT = "failures.count"
FAIL_OPEN = "failures.open"  # image id opened from the gallery

# Localization
LOC_RUNS = "localization.runs"
LOC_METRIC = "localization.metric"
LOC_LUNG_METRIC = "localization.lung_metric"  # the in-lung figure charted (app.lung_rates.METRICS)
LOC_LUNG_RUN = "localization.lung_run"  # the run of the in-lung gallery
LOC_RUN = "localization.gallery_run"

# Attention over training
TIMELINE_RUN = "timeline.run"
TIMELINE_IMAGE = "timeline.image"  # position of the film in the run's timeline
TIMELINE_EPOCH = "timeline.epoch"
TIMELINE_MAP = "timeline.map"  # the map whose curves are drawn: a gate's name or "class"

# About
ABOUT_RUN = "about.run"


def attention_key(backbone: str) -> str:
    """Per-column switch: the attention-trained checkpoint (True) or the baseline (False)."""
    return f"explore.attention.{backbone}"


def kind_key(backbone: str) -> str:
    """Per-column choice: which attention kind the switch turns on (when several are trained)."""
    return f"explore.kind.{backbone}"


def ablate_key(backbone: str) -> str:
    """Per-column switch: run the attention model with every gate set to 1."""
    return f"explore.ablate.{backbone}"


def defaults(
    backbones: list[str],
    labels: list[str],
    evaluated: list[str],
    localized: list[str],
    attention_kinds: Mapping[str, str | None] | None = None,
    class_backbones: list[str] | None = None,
    real_films: bool = False,
) -> dict[str, Any]:
    """Fresh defaults for one session, from what the registry offers: backbones, labels, the
    names of evaluated and localized runs, each backbone's default attention kind (the paper's
    gate when trained), the backbones with a class-specific model (the Explore page opens on
    the mechanisms view when there is one) and whether the models shown learnt real films (the
    lung fields are then drawn on every map from the start). A None is filled in by the page that
    knows the options.
    """
    kinds = dict(attention_kinds or {})
    contrast = list(class_backbones or [])
    return {
        SOURCE: "sample",
        SAMPLE: None,
        VIEW: "mechanisms" if contrast else "backbones",
        MECHANISMS_BACKBONE: (contrast or backbones or [None])[0],
        GRADCAM_OF: "baseline",
        BACKBONES: backbones[:2],
        LABEL: labels[0] if labels else None,
        METHOD: "attention",
        OPACITY: 0.8,
        SHARED_SCALE: False,
        SHOW_DIFFERENCE: False,
        SHOW_IDENTIFIERS: False,
        SHOW_TRUTH: True,
        SHOW_LUNGS: real_films,
        PRIOR_PAIR: None,
        PRIOR_METHOD: "attention",
        COMPARE_RUNS: evaluated[:8],  # two backbones' three variants and a teaching model
        COMPARE_LABEL: None,
        COMPARE_MAX_FPR: 1.0,
        FAIL_RUN: evaluated[0] if evaluated else None,
        FAIL_LABEL: None,
        FAIL_SUBGROUP: "all",
        FAIL_SCORES: (0.0, 1.0),
        FAIL_COUNT: 8,
        LOC_RUNS: localized[:6],
        LOC_METRIC: "pointing_game",
        LOC_LUNG_METRIC: "peak_inside",
        LOC_LUNG_RUN: None,
        LOC_RUN: localized[0] if localized else None,
        **{attention_key(b): True for b in backbones},
        **{kind_key(b): kinds.get(b) for b in backbones},
        **{ablate_key(b): False for b in backbones},
    }


def init_defaults(state: MutableMapping[str, Any], values: dict[str, Any]) -> None:
    """Give every key of `values` its default when missing; re-assign it (keep it) otherwise."""
    for key, value in values.items():
        state[key] = state.get(key, value)


def forget_page_choices(state: MutableMapping[str, Any] | None = None) -> None:
    """Drop every page's choice but the film being explored (the sidebar's collection changed:
    labels, runs and backbones of the other models mean nothing to these)."""
    if state is None:
        import streamlit as st

        state = st.session_state
    for key in [k for k in state if str(k).startswith(PAGE_PREFIXES)]:
        if key not in KEPT_ON_SWITCH:
            del state[key]
