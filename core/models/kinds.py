"""The attention kinds a classifier can have, and the run names they give (no torch import).

- ``spatial``: the CBAM spatial gate after chosen stages, one map for all labels (the paper's);
- ``cbam``: CBAM's channel attention, then its spatial gate (the hybrid the paper names as future
  work);
- ``class``: a class-specific residual attention head (CSRA, Zhu and Wu, ICCV 2021), one map per
  label.
"""

from __future__ import annotations

ATTENTION_KINDS: tuple[str, ...] = ("spatial", "cbam", "class")
DEFAULT_KIND = "spatial"
OUTPUT_STRIDES: tuple[int, ...] = (8, 16, 32)  # input pixels per final feature pixel timm offers

KIND_TITLES = {
    "spatial": "spatial gate (CBAM, the paper's)",
    "cbam": "channel + spatial (CBAM)",
    "class": "class-specific attention (CSRA)",
}

# Whether a kind's own maps are per label (True) or one map shared by every label.
CLASS_SPECIFIC = {"spatial": False, "cbam": False, "class": True}


def variant_name(backbone: str, kind: str | None) -> str:
    """The run folder name of a backbone with attention of `kind` (None: the baseline); the
    paper's spatial gate keeps the name runs had before there were several kinds."""
    if kind is None:
        return backbone
    return f"{backbone}+attention" if kind == "spatial" else f"{backbone}+{kind}"


def parse_variant(name: str) -> tuple[str, str | None]:
    """(backbone, kind) of a run name made by `variant_name`; an unknown suffix is the backbone's."""
    backbone, plus, suffix = name.rpartition("+")
    if not plus:
        return name, None
    if suffix == "attention":
        return backbone, "spatial"
    if suffix in ATTENTION_KINDS:
        return backbone, suffix
    return name, None
