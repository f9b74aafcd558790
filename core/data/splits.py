"""Patient-wise train / validation / test splits for ChestX-ray14-style label tables.

ChestX-ray14 has up to 184 follow-up films of one patient, so a split by image would leak the same
chest into training and test. Every split here is made by patient:

- `official_split`: the published `train_val_list.txt` / `test_list.txt` decide test; validation is
  carved from train_val by patient with a seed (the lists have no validation part).
- `patient_split`: without lists, patients are shuffled with a seed and assigned to test, then
  validation, until each part holds its fraction of the images.

`check_patient_disjoint` is run on every split before it is used.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from cxr_attention.core.errors import ConfigError, DatasetError

SPLITS: tuple[str, ...] = ("train", "val", "test")
# Marks an image that neither list names; the reader drops (and reports) such images.
UNASSIGNED = ""


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {value}")


def carve_patients(patient_ids: np.ndarray, fraction: float, rng: np.random.Generator) -> set[int]:
    """Patients drawn at random until they hold at least `fraction` of the images.

    `patient_ids` has one entry per image. Patients are visited in a seeded random order (over the
    sorted unique ids, so the result does not depend on row order) and taken whole.
    """
    if fraction <= 0.0 or len(patient_ids) == 0:
        return set()
    patients, counts = np.unique(patient_ids, return_counts=True)
    order = rng.permutation(len(patients))
    cumulative = np.cumsum(counts[order])
    target = fraction * len(patient_ids)
    n_taken = int(np.searchsorted(cumulative, target, side="left")) + 1
    return set(patients[order[:n_taken]].tolist())


def official_split(
    image_ids: np.ndarray,
    patient_ids: np.ndarray,
    train_val: Collection[str],
    test: Collection[str],
    val_fraction: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Split names ("train"/"val"/"test", or `UNASSIGNED` for images in neither list), per image.

    `train_val` and `test` are the image names of the official lists; validation is `val_fraction`
    of the train_val images, taken by patient with `seed`.
    """
    _check_fraction("val_fraction", val_fraction)
    names = np.asarray(image_ids, dtype=object).tolist()
    test_set, train_val_set = set(test), set(train_val)
    in_test = np.array([name in test_set for name in names], dtype=bool)
    in_train_val = np.array([name in train_val_set for name in names], dtype=bool)
    both = in_test & in_train_val
    if both.any():
        example = image_ids[both][0]
        raise DatasetError(
            f"{int(both.sum())} images (e.g. {example}) are in both train_val_list.txt and "
            "test_list.txt: fix the lists or remove both to split by patient"
        )
    split = np.full(len(image_ids), UNASSIGNED, dtype=object)
    split[in_test] = "test"
    split[in_train_val] = "train"
    rng = np.random.default_rng(seed)
    val_patients = carve_patients(patient_ids[in_train_val], val_fraction, rng)
    split[in_train_val & np.isin(patient_ids, list(val_patients))] = "val"
    return split


def patient_split(
    patient_ids: np.ndarray,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> np.ndarray:
    """Seeded patient-wise split when no official lists exist: test first, then validation.

    `test_fraction` is a fraction of all images; `val_fraction` a fraction of the rest (as
    validation is a fraction of train_val in `official_split`).
    """
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    test_patients = carve_patients(patient_ids, test_fraction, rng)
    is_test = np.isin(patient_ids, list(test_patients))
    val_patients = carve_patients(patient_ids[~is_test], val_fraction, rng)
    split = np.full(len(patient_ids), "train", dtype=object)
    split[is_test] = "test"
    split[~is_test & np.isin(patient_ids, list(val_patients))] = "val"
    return split


def check_patient_disjoint(patient_ids: np.ndarray, split: np.ndarray) -> None:
    """Raise DatasetError when any patient has images in more than one split."""
    pairs = np.unique(np.stack([np.asarray(patient_ids, dtype=np.int64), _codes(split)]), axis=1)
    patients, n_splits = np.unique(pairs[0], return_counts=True)
    crossing = patients[n_splits > 1]
    if len(crossing):
        names = sorted(set(np.asarray(split)[np.asarray(patient_ids) == crossing[0]]))
        raise DatasetError(
            f"{len(crossing)} patients have images in more than one split (e.g. patient "
            f"{int(crossing[0])} in {' and '.join(names)}): the split lists must be "
            "patient-disjoint; fix train_val_list.txt/test_list.txt or remove both to split by patient"
        )


def _codes(split: np.ndarray) -> np.ndarray:
    _, codes = np.unique(np.asarray(split, dtype=str), return_inverse=True)
    return codes.astype(np.int64)
