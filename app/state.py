"""Session-state keys, named once, and the per-session defaults.

Widgets take their key from here and no `value=`: `init_defaults` fills missing keys before the
widgets are drawn, so a default never fights a user's choice.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

# Explore an image
SOURCE = "explore.source"  # "sample" or "upload"
SAMPLE = "explore.sample"  # file name of the chosen sample
UPLOAD = "explore.upload"  # the file_uploader widget
BACKBONES = "explore.backbones"  # chosen backbones, one column each
LABEL = "explore.label"  # the label explained
METHOD = "explore.method"  # explanation method (core.explain name)
OPACITY = "explore.opacity"  # overlay opacity in [0, 1]
SHARED_SCALE = "explore.shared_scale"  # one colour scale across columns
SHOW_DIFFERENCE = "explore.difference"  # map and probability difference, attention on minus off
SHOW_IDENTIFIERS = "explore.identifiers"  # reveal DICOM patient identifiers
SHOW_TRUTH = "explore.truth"  # draw ground-truth boxes and masks

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
LOC_RUN = "localization.gallery_run"

# About
ABOUT_RUN = "about.run"


def attention_key(backbone: str) -> str:
    """Per-column switch: the attention-trained checkpoint (True) or the baseline (False)."""
    return f"explore.attention.{backbone}"


def ablate_key(backbone: str) -> str:
    """Per-column switch: run the attention model with every gate set to 1."""
    return f"explore.ablate.{backbone}"


def defaults(backbones: list[str], labels: list[str]) -> dict[str, Any]:
    """Fresh defaults for one session, given the backbones and labels the registry offers."""
    return {
        SOURCE: "sample",
        BACKBONES: backbones[:2],
        LABEL: labels[0] if labels else None,
        METHOD: "attention",
        OPACITY: 0.45,
        SHARED_SCALE: True,
        SHOW_DIFFERENCE: False,
        SHOW_IDENTIFIERS: False,
        SHOW_TRUTH: True,
        COMPARE_MAX_FPR: 1.0,
        FAIL_COUNT: 8,
        FAIL_SUBGROUP: "all",
        FAIL_SCORES: (0.0, 1.0),
        LOC_METRIC: "pointing_game",
        **{attention_key(b): True for b in backbones},
        **{ablate_key(b): False for b in backbones},
    }


def init_defaults(state: MutableMapping[str, Any], values: dict[str, Any]) -> None:
    """Set every key of `values` that `state` lacks (user choices are kept)."""
    for key, value in values.items():
        if key not in state:
            state[key] = value
