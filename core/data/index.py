"""The one dataset index every source produces, and that caches, loaders, training, evaluation,
reports and the app read: items with path, patient, split and labels, optional boxes and masks.

Sources (`core.data.sources`) read a layout (ChestX-ray14 and the phantom, class folders, a CSV
table) into a `DatasetIndex`; nothing downstream learns a layout. What a researcher must know about
the folder (duplicates, patients in two splits, debris skipped, ...) travels with it as `findings`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxr_attention.core.data import splits as splitting
from cxr_attention.core.errors import ConfigError
from cxr_attention.core.labels import ALL14

ITEM_COLUMNS: tuple[str, ...] = ("image_id", "path", "patient_id", "age", "sex", "view", "split")
BOX_COLUMNS: tuple[str, ...] = ("image_id", "label", "x", "y", "w", "h")


class DatasetWarning(UserWarning):
    """Something about a dataset folder the user should know, but that does not stop training."""


@dataclass(frozen=True)
class Finding:
    """One thing a researcher must know about a dataset, in words and in numbers.

    `kind` is a stable key (e.g. "identical_files", "patients_in_two_splits"); `count` how many
    films (or groups, as `message` says); `examples` a few names; `action` what the reader did.
    """

    kind: str
    count: int
    message: str
    examples: tuple[str, ...] = ()
    action: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "message": self.message,
            "examples": list(self.examples),
            "action": self.action,
        }

    def line(self) -> str:
        shown = f" (e.g. {', '.join(self.examples[:3])})" if self.examples else ""
        action = f": {self.action}" if self.action else ""
        return f"{self.message}{shown}{action}"


@dataclass(eq=False)
class DatasetIndex:
    """A dataset, read: one row per usable image, labels, split and boxes.

    `items` columns: image_id (unique within the dataset: the file name for ChestX-ray14, the
    path relative to `root` elsewhere), path (absolute str), patient_id (int), age (float years,
    NaN when missing or impossible), sex, view ("" when unknown), split ("train"/"val"/"test"),
    then one 0/1 int column per label in `labels` order. `boxes` columns: image_id, label, x, y,
    w, h (float pixels in the image's own frame). `fingerprint` identifies the data (for a phantom:
    what drew it, the same on every machine); `files_fingerprint` the files themselves (names and
    byte sizes), which the image cache checks. `source` names the reader ("chestxray14",
    "phantom", "class_folders", "table"); `split_method` how the splits were made; `findings`
    what the reader noticed (`core.data.audit` adds what decoding the films shows).
    """

    root: Path
    labels: tuple[str, ...]
    source: str
    fingerprint: str
    files_fingerprint: str
    items: pd.DataFrame
    boxes: pd.DataFrame
    label_set: str = "auto"  # what was asked: "auto", "all14", "paper13" or a list of names
    split_method: str = "official"
    seed: int = 0
    val_fraction: float = 0.1
    views: tuple[str, ...] = ()
    n_absent: int = 0  # images listed in a label file but not on disk
    uncertain: str = "zeros"  # how a table's -1 ("uncertain") labels were read
    findings: list[Finding] = field(default_factory=list)
    title: str = ""  # what the films are, in words ("5,216 paediatric films from ..."), if known
    cache_name: str = ""  # sub-folder of the image cache (a table beside others in one folder)
    _masks: dict[str, Path] | None = field(default=None, repr=False)

    def split(self, name: str) -> pd.DataFrame:
        """The items of one split ("train", "val" or "test"), re-indexed from 0."""
        if name not in splitting.SPLITS:
            raise ConfigError(
                f"unknown split {name!r}: choose one of {', '.join(splitting.SPLITS)}"
            )
        return self.items[self.items["split"] == name].reset_index(drop=True)

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 (n, L) 0/1 targets of `frame`'s rows, columns in `labels` order."""
        return frame[list(self.labels)].to_numpy(dtype=np.float32)

    @property
    def has_truth(self) -> bool:
        """Whether any film has a box or a pixel mask to score maps against."""
        return len(self.boxes) > 0 or self.source == "phantom"

    def mask_paths(self, image_id: str) -> dict[str, Path]:
        """Pixel masks {label: path} of one image (the phantom's `masks/<stem>_<Label>.png`)."""
        if self.source != "phantom":
            return {}
        if self._masks is None:
            self._masks = _scan_masks(self.root / "masks")
        stem = Path(image_id).stem
        found = {label: self._masks.get(f"{stem}_{label}.png") for label in ALL14}
        return {label: path for label, path in found.items() if path is not None}


def empty_boxes() -> pd.DataFrame:
    """A box table with no rows and the `BOX_COLUMNS` dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=float) for name in BOX_COLUMNS}).astype(
        {"image_id": object, "label": object}
    )


def build_items(
    image_ids: Sequence[str],
    paths: Sequence[str],
    patient_ids: np.ndarray,
    split: np.ndarray,
    targets: pd.DataFrame,
    labels: Sequence[str],
    age: np.ndarray | None = None,
    sex: np.ndarray | None = None,
    view: np.ndarray | None = None,
) -> pd.DataFrame:
    """The `items` table from columns (one entry per film); `targets` holds one 0/1 column per
    label (at least `labels`)."""
    n = len(image_ids)
    items = pd.DataFrame(
        {
            "image_id": np.asarray(image_ids, dtype=object),
            "path": np.asarray(paths, dtype=object),
            "patient_id": np.asarray(patient_ids, dtype=np.int64),
            "age": np.full(n, np.nan) if age is None else np.asarray(age, dtype=float),
            "sex": np.full(n, "", dtype=object) if sex is None else np.asarray(sex, dtype=object),
            "view": np.full(n, "", dtype=object)
            if view is None
            else np.asarray(view, dtype=object),
            "split": np.asarray(split, dtype=object),
        }
    )
    for label in labels:
        items[label] = np.asarray(targets[label], dtype=np.int64)
    return items


def patient_numbers(keys: Sequence[str]) -> np.ndarray:
    """int64 patient ids from patient names, numbered in sorted name order.

    Sorted order keeps every patient's place among the others when films are added (a test folder
    unpacked later), so a seeded validation carve-out picks the same patients again.
    """
    names = np.asarray(keys, dtype=object)
    uniques = np.array(sorted(set(names.tolist())), dtype=object)
    return np.searchsorted(uniques, names).astype(np.int64)


def files_fingerprint(entries: Iterable[tuple[str, int]], extra_files: Sequence[Path] = ()) -> str:
    """A stable hash of (relative name, byte size) pairs and the bytes of `extra_files` (label
    tables). Cheap: no film is read; it changes when a film is added, removed, renamed or replaced
    by one of another size, or a label file changes."""
    digest = hashlib.sha256()
    hash_files(digest, list(extra_files))
    digest.update("".join(f"{name}\t{size}\n" for name, size in sorted(entries)).encode())
    return digest.hexdigest()[:16]


def hash_files(digest, paths: Sequence[Path]) -> None:
    """Feed each file's name and the SHA-256 of its bytes to `digest` (a hashlib object)."""
    for path in paths:
        digest.update(f"{path.name}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def _scan_masks(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    with os.scandir(folder) as entries:
        return {entry.name: Path(entry.path) for entry in entries if entry.is_file()}
