"""The label contract: the ChestX-ray14 pathology names and their one fixed order, and how the
labels of other collections (class folders, tables) are named and chosen.

Every array of labels or scores in this project has its columns in the order of the label set it was
made with; `check_same_labels` refuses to mix two different orders.
"""

from __future__ import annotations

import re
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
# `--labels auto`: the labels the data names (ChestX-ray14's 14, a class folder's classes, ...).
AUTO = "auto"

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


def _letters(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_NO_FINDING_SPELLINGS = frozenset({"normal", "nofinding", "nofindings", "healthy", "negative"})


def means_no_finding(name: str) -> bool:
    """Whether a class or column name means "no finding": normal, No Finding, NO_FINDING,
    no-findings, healthy, ... (any case, spaces, underscores or hyphens)."""
    return _letters(name) in _NO_FINDING_SPELLINGS


def finding_name(name: str) -> str:
    """A label name for a class folder or table column: ChestX-ray14's spelling when it names one
    of its findings in any case (PNEUMONIA -> Pneumonia, pleural thickening ->
    Pleural_Thickening), else the name as written."""
    name = canonical_label(name)
    known = {_letters(label): label for label in ALL14}
    known |= {_letters(alias): label for alias, label in LABEL_ALIASES.items()}
    return known.get(_letters(name), name)


def choose_labels(spec: str | Sequence[str], found: Sequence[str], where: str) -> tuple[str, ...]:
    """The labels a run trains on, from `spec` and the labels the data names (`found`, in its order).

    `spec`: "auto" (every label found), "all14" / "paper13" (ChestX-ray14's sets: the data must
    name all of them), or names (a comma-separated string or a sequence), kept in the order given.
    Raises ConfigError naming the labels the data has.
    """
    found = tuple(found)
    if isinstance(spec, str) and spec == AUTO:
        return found
    if isinstance(spec, str) and spec in LABEL_SETS:
        wanted = LABEL_SETS[spec]
        missing = [label for label in wanted if label not in found]
        if missing:
            raise ConfigError(
                f"--labels {spec} names ChestX-ray14's findings, but {where} has the labels "
                f"{', '.join(found)}: leave --labels out (auto) or name some of those"
            )
        return wanted
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    by_letters = {_letters(label): label for label in found}
    chosen, unknown = [], []
    for name in (n for n in names if n):
        label = name if name in found else by_letters.get(_letters(finding_name(name)))
        (chosen if label else unknown).append(label or name)
    if unknown or not chosen:
        raise ConfigError(
            f"--labels: {', '.join(unknown) or 'nothing'} not among the labels of {where} "
            f"({', '.join(found)}); use auto for all of them"
        )
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"--labels names a label twice: {', '.join(chosen)}")
    return tuple(chosen)


def check_label_spec(spec: str | Sequence[str]) -> None:
    """Refuse a `--labels` value that can never work, before any data is read."""
    if isinstance(spec, str) and not spec.strip():
        raise ConfigError("--labels is empty: use auto, all14, paper13 or label names")


def check_same_labels(expected: Sequence[str], actual: Sequence[str], what: str) -> None:
    """Raise a clear error when two label lists differ in content or order."""
    if tuple(expected) != tuple(actual):
        missing = [label for label in expected if label not in actual]
        extra = [label for label in actual if label not in expected]
        detail = (
            f"missing {missing}, extra {extra}" if missing or extra else "same labels, other order"
        )
        raise ConfigError(f"{what}: labels do not match ({detail})")
