"""The label contract: the ChestX-ray14 pathology names and their one fixed order.

Every array of labels or scores in this project has its columns in the order of the label set it was
made with; `check_same_labels` refuses to mix two different orders.
"""

from __future__ import annotations

from collections.abc import Sequence

from cxr_attention.core.errors import ConfigError

# The 14 findings of ChestX-ray14 (Wang et al., CVPR 2017), in the order of the original paper.
ALL14: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

# The paper trains on "13 thoracic conditions" without naming the one left out. We assume Hernia, the
# rarest finding (227 of 112,120 images), which is the usual choice in the literature.
PAPER13: tuple[str, ...] = tuple(label for label in ALL14 if label != "Hernia")

LABEL_SETS: dict[str, tuple[str, ...]] = {"all14": ALL14, "paper13": PAPER13}

NO_FINDING = "No Finding"

# Spellings in ChestX-ray14's files that differ from the label list.
LABEL_ALIASES: dict[str, str] = {
    "Infiltrate": "Infiltration",
    "Pleural Thickening": "Pleural_Thickening",
    "Pleural_thickening": "Pleural_Thickening",
}


def label_set(name: str) -> tuple[str, ...]:
    """The labels of a named set (`all14` or `paper13`), in their fixed order."""
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown label set {name!r}: choose one of {', '.join(LABEL_SETS)}"
        ) from None


def canonical_label(name: str) -> str:
    """The label-list spelling of a finding name as written in a ChestX-ray14 file."""
    name = name.strip()
    return LABEL_ALIASES.get(name, name)


def check_same_labels(expected: Sequence[str], actual: Sequence[str], what: str) -> None:
    """Raise a clear error when two label lists differ in content or order."""
    if tuple(expected) != tuple(actual):
        missing = [label for label in expected if label not in actual]
        extra = [label for label in actual if label not in expected]
        detail = (
            f"missing {missing}, extra {extra}" if missing or extra else "same labels, other order"
        )
        raise ConfigError(f"{what}: labels do not match ({detail})")
