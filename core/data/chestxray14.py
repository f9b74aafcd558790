"""The NIH ChestX-ray14 reader (Wang et al., CVPR 2017), for the real download and the phantom.

`read_chestxray14(root)` reads a folder as users have it (`core.data.sources` picks it):

- the label file `Data_Entry_2017.csv` (with a trailing empty column) or `Data_Entry_2017_v2020.csv`
  (whose `OriginalImage[Width,Height]` header spans two cells), optionally gzipped; labels are
  `|`-separated, `No Finding` means all negative;
- the PNGs in `images/` or in `images_001/images/` ... `images_012/images/`; a partial download keeps
  the images present and warns once with the number of listed images that are absent;
- `BBox_List_2017.csv` (optional): 984 boxes whose header has six cells with the box in columns 3-6,
  in the 1024 x 1024 frame, where the label `Infiltrate` means `Infiltration`;
- `train_val_list.txt` / `test_list.txt` (optional): the official patient-disjoint split.

Counts on the full download (`Data_Entry_2017_v2020`): 112,120 images of 30,805 patients; official
split 86,524 train_val / 25,596 test images. The labels were mined from reports by NLP and are noisy.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxr_attention.core.data import splits as splitting
from cxr_attention.core.data.index import (
    BOX_COLUMNS,
    DatasetIndex,
    DatasetWarning,
    Finding,
    empty_boxes,
    hash_files,
)
from cxr_attention.core.errors import ConfigError, DatasetError
from cxr_attention.core.labels import ALL14, NO_FINDING, canonical_label, choose_labels

LABEL_FILES: tuple[str, ...] = (
    "Data_Entry_2017_v2020.csv",
    "Data_Entry_2017.csv",
    "Data_Entry_2017_v2020.csv.gz",
    "Data_Entry_2017.csv.gz",
)
BOX_FILES: tuple[str, ...] = ("BBox_List_2017.csv", "BBox_List_2017.csv.gz")
TRAIN_VAL_LIST = "train_val_list.txt"
TEST_LIST = "test_list.txt"
PHANTOM_MARKER = "PHANTOM.json"
# What made a phantom (PHANTOM.json): with its label file and lists, its identity on any machine.
PHANTOM_IDENTITY: tuple[str, ...] = (
    "generator",
    "generator_version",
    "n",
    "size",
    "seed",
    "difficulty",
    "splits",
)
VIEWS: tuple[str, ...] = ("PA", "AP")
# Boxes of the real dataset are given in the frame of the 1024 x 1024 PNGs.
BOX_FRAME = 1024
MAX_AGE_YEARS = 120

# Header cells of Data_Entry that the reader uses, and the item column each becomes.
_COLUMNS = {
    "Image Index": "image_id",
    "Finding Labels": "findings",
    "Patient ID": "patient_id",
    "Patient Age": "age",
    "Patient Gender": "sex",
    "View Position": "view",
}


def is_chestxray14(root: Path) -> bool:
    """Whether `root` is (or was meant to be) a ChestX-ray14-layout folder, a real download or a
    phantom: any of its files, or its image folders (images/ alone, images_0XX/). The reader then
    says what is missing."""
    if not root.is_dir():
        return False
    names = (*LABEL_FILES, *BOX_FILES, TRAIN_VAL_LIST, TEST_LIST, PHANTOM_MARKER)
    if any((root / name).is_file() for name in names):
        return True
    folders = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return folders == ["images"] or any(name.startswith("images_0") for name in folders)


def read_chestxray14(
    root: str | Path,
    labels: str | Sequence[str] = "auto",
    views: str | tuple[str, ...] = VIEWS,
    val_fraction: float = 0.1,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> DatasetIndex:
    """Read a ChestX-ray14-layout folder (real download or phantom) into a `DatasetIndex`.

    `labels`: "auto" or "all14" (the 14 findings), "paper13", or label names; `views` keeps PA
    and/or AP films. Splits come from the official lists when present (validation =
    `val_fraction` of train_val, by patient, seeded); otherwise a seeded patient-wise split with
    `test_fraction` test and `val_fraction` of the rest for validation. Splits are made on the
    whole label file before the view filter and before absent images are dropped, so they do not
    change as a partial download fills up.
    """
    root = Path(root).expanduser().resolve()
    chosen = choose_labels(labels, ALL14, f"ChestX-ray14 folder {root}")
    views = _check_views(views)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist: pass the ChestX-ray14 folder")
    label_path = find_label_file(root)
    table = read_data_entry(label_path)
    table["split"], split_method, list_paths = _assign_splits(
        root, table, val_fraction, seed, test_fraction
    )
    images = scan_images(root)
    present = np.array([name in images for name in table["image_id"].tolist()], dtype=bool)
    if not present.any():
        raise DatasetError(
            f"none of the {len(table):,} images listed in {label_path.name} is under {root}/images/ "
            "or images_0XX/images/: download the PNGs into one of those layouts"
        )
    n_absent = int((~present).sum())
    findings = []
    if n_absent:
        findings.append(
            Finding(
                "absent",
                n_absent,
                f"images listed in {label_path.name} but absent (a partial download?)",
                action=f"using the {int(present.sum()):,} present",
            )
        )
        warnings.warn(
            f"{n_absent:,} of {len(table):,} images listed in {label_path.name} are absent from "
            f"{root} (partial download?): using the {int(present.sum()):,} present",
            DatasetWarning,
            stacklevel=2,
        )
    names = table["image_id"].to_numpy(dtype=object)[present]
    files = dataset_fingerprint(label_path, list_paths, names, images)
    phantom = read_phantom_identity(root)
    fingerprint = (
        files if phantom is None else phantom_fingerprint(phantom, label_path, list_paths, names)
    )
    unlisted = present & (table["split"] == splitting.UNASSIGNED).to_numpy()
    if unlisted.any():
        warnings.warn(
            f"{int(unlisted.sum()):,} present images are in neither {TRAIN_VAL_LIST} nor "
            f"{TEST_LIST}: left out",
            DatasetWarning,
            stacklevel=2,
        )
    keep = present & ~unlisted & table["view"].isin(views).to_numpy()
    if not keep.any():
        raise DatasetError(f"no images of view {'/'.join(views)} in {root}: choose other views")
    items = _items(table[keep], images, chosen)
    boxes = read_boxes(root, set(items["image_id"]), images, box_scale=_box_frame(root))
    findings.append(
        Finding(
            "splits",
            len(items),
            f"split by the official lists ({TRAIN_VAL_LIST}, {TEST_LIST})"
            if split_method == "official"
            else "no official lists",
            action="validation carved by patient from train_val"
            if split_method == "official"
            else "a seeded split by patient carves test and validation",
        )
    )
    return DatasetIndex(
        root=root,
        labels=chosen,
        source="phantom" if (root / PHANTOM_MARKER).exists() else "chestxray14",
        fingerprint=fingerprint,
        files_fingerprint=files,
        items=items,
        boxes=boxes,
        label_set=labels if isinstance(labels, str) else ",".join(labels),
        split_method=split_method,
        seed=seed,
        val_fraction=val_fraction,
        views=views,
        n_absent=n_absent,
        findings=findings,
    )


def _check_views(views: str | tuple[str, ...]) -> tuple[str, ...]:
    chosen = (views,) if isinstance(views, str) else tuple(views)
    chosen = tuple(view.strip().upper() for view in chosen)
    unknown = [view for view in chosen if view not in VIEWS]
    if unknown or not chosen:
        raise ConfigError(f"unknown view {unknown or chosen}: ChestX-ray14 has PA and AP films")
    return chosen


def find_label_file(root: Path) -> Path:
    """The folder's Data_Entry file; DatasetError naming the expected files when there is none."""
    for name in LABEL_FILES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(
        f"no label file in {root}: expected {LABEL_FILES[1]} or {LABEL_FILES[0]} "
        "(from the NIH ChestX-ray14 download)"
    )


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def read_data_entry(path: str | Path) -> pd.DataFrame:
    """The label file as a table: image_id, findings (str), patient_id, age, sex, view, then 14 0/1
    int8 columns in `ALL14` order. Ages over 120 years become NaN, with one warning."""
    path = Path(path)
    data = _read_bytes(path)
    header = next(csv.reader(io.StringIO(data[: data.find(b"\n")].decode("utf-8-sig"))))
    header = [cell.strip() for cell in header]
    missing = [name for name in _COLUMNS if name not in header]
    if missing:
        raise DatasetError(
            f"{path.name} lacks the columns {missing}: is it a ChestX-ray14 label file?"
        )
    positions = [header.index(name) for name in _COLUMNS]
    table = pd.read_csv(
        io.BytesIO(data),
        header=None,
        skiprows=1,
        usecols=positions,
        dtype=object,
        keep_default_na=False,
        engine="c",
    )
    table = table[positions]
    table.columns = list(_COLUMNS.values())
    table["image_id"] = np.array(
        [name.strip() for name in table["image_id"].tolist()], dtype=object
    )
    duplicated = table["image_id"].duplicated()
    if duplicated.any():
        raise DatasetError(
            f"{path.name} lists {table['image_id'][duplicated].iloc[0]} more than once: "
            "use an unmodified label file"
        )
    patient = pd.to_numeric(table["patient_id"], errors="coerce")
    if patient.isna().any():
        bad = table["image_id"][patient.isna()].iloc[0]
        raise DatasetError(f"{path.name}: {bad} has no numeric Patient ID: use an unmodified file")
    table["patient_id"] = patient.astype(np.int64)
    table["age"] = _ages(table["age"], path.name)
    table["sex"] = _normalised_codes(table["sex"])
    table["view"] = _normalised_codes(table["view"])
    findings = parse_findings(table["findings"], path.name)
    for index, label in enumerate(ALL14):
        table[label] = findings[:, index]
    return table


def _normalised_codes(column: pd.Series) -> np.ndarray:
    # Few distinct values (M/F, PA/AP): clean the uniques, not 112,120 strings.
    codes, uniques = pd.factorize(column)
    cleaned = np.array([str(value).strip().upper() for value in uniques] + [""], dtype=object)
    return cleaned[codes]


def _ages(column: pd.Series, file_name: str) -> pd.Series:
    # The 2017 file has ages such as 414 (and some mirrors write "058Y"): impossible ages are unknown.
    ages = pd.to_numeric(column, errors="coerce")
    unparsed = ages.isna() & (column.fillna("").astype(str) != "")
    if unparsed.any():
        digits = column[unparsed].str.extract(r"^\s*(\d+(?:\.\d+)?)", expand=False)
        ages[unparsed] = pd.to_numeric(digits, errors="coerce")
    impossible = ages > MAX_AGE_YEARS
    if impossible.any():
        warnings.warn(
            f"{int(impossible.sum())} ages over {MAX_AGE_YEARS} years in {file_name} "
            "treated as unknown",
            DatasetWarning,
            stacklevel=3,
        )
    return ages.where(~impossible).astype(float)


def parse_findings(findings: pd.Series, file_name: str = "Data_Entry") -> np.ndarray:
    """`|`-separated finding strings -> int8 (n, 14) in `ALL14` order; `No Finding` is all zero.

    Names are matched whole (never as substrings) after `canonical_label`; an unknown name is a
    DatasetError.
    """
    codes, uniques = pd.factorize(findings)
    column = {label: index for index, label in enumerate(ALL14)}
    matrix = np.zeros((len(uniques), len(ALL14)), dtype=np.int8)
    for row, text in enumerate(uniques):
        for name in str(text).split("|"):
            name = canonical_label(name)
            if name in ("", NO_FINDING):
                continue
            if name not in column:
                raise DatasetError(
                    f"{file_name}: unknown finding {name!r}: expected ChestX-ray14 labels "
                    f"({', '.join(ALL14)}) or {NO_FINDING!r}"
                )
            matrix[row, column[name]] = 1
    if (codes < 0).any():
        raise DatasetError(f"{file_name}: an image has no Finding Labels: use an unmodified file")
    return matrix[codes]


def read_list(path: Path) -> list[str]:
    """Image names of a split list, one per line (the official files have no trailing newline)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _assign_splits(
    root: Path, table: pd.DataFrame, val_fraction: float, seed: int, test_fraction: float
) -> tuple[np.ndarray, str, list[Path]]:
    train_val_path, test_path = root / TRAIN_VAL_LIST, root / TEST_LIST
    present = [path for path in (train_val_path, test_path) if path.is_file()]
    image_ids = table["image_id"].to_numpy()
    patient_ids = table["patient_id"].to_numpy()
    if len(present) == 1:
        absent = TEST_LIST if present[0] == train_val_path else TRAIN_VAL_LIST
        raise DatasetError(
            f"{root} has {present[0].name} but not {absent}: add both official lists or neither"
        )
    if present:
        split = splitting.official_split(
            image_ids,
            patient_ids,
            read_list(train_val_path),
            read_list(test_path),
            val_fraction,
            seed,
        )
        method = "official"
    else:
        split = splitting.patient_split(patient_ids, val_fraction, test_fraction, seed)
        method = "patient"
    assigned = split != splitting.UNASSIGNED
    splitting.check_patient_disjoint(patient_ids[assigned], split[assigned])
    return split, method, present


def scan_images(root: Path) -> dict[str, os.DirEntry]:
    """Image file name -> directory entry, from `images/` and `images_0XX/images/` (or
    `images_0XX/` itself). One `os.scandir` per folder; sizes are read later, only when needed."""
    folders = [root / "images"] if (root / "images").is_dir() else []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith("images_") and entry.is_dir():
            nested = Path(entry.path) / "images"
            folders.append(nested if nested.is_dir() else Path(entry.path))
    found: dict[str, os.DirEntry] = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name not in found and entry.is_file():
                    found[entry.name] = entry
    return found


def dataset_fingerprint(
    label_path: Path, list_paths: list[Path], names: np.ndarray, images: dict[str, os.DirEntry]
) -> str:
    """A stable hash of the label file, the split lists and the used images' names and byte sizes.

    Cheap (no image is decoded); it changes when a file is added, removed, replaced by one of another
    size, or relabelled, and does not change when the folder moves or the layout changes.
    """
    digest = hashlib.sha256()
    hash_files(digest, [label_path, *list_paths])
    lines = "".join(f"{name}\t{images[name].stat().st_size}\n" for name in sorted(names))
    digest.update(lines.encode())
    return digest.hexdigest()[:16]


def read_phantom_identity(root: Path) -> dict | None:
    """What made the phantom at `root` ({PHANTOM_IDENTITY key: value} from PHANTOM.json), or None
    for a real download, or a manifest too old or damaged to say (its films are then identified by
    their files, `dataset_fingerprint`)."""
    try:
        manifest = json.loads((root / PHANTOM_MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or "generator_version" not in manifest:
        return None
    return {key: manifest.get(key) for key in PHANTOM_IDENTITY}


def phantom_fingerprint(
    identity: dict, label_path: Path, list_paths: list[Path], names: np.ndarray
) -> str:
    """A phantom's fingerprint: what made it (generator version, n, size, seed, difficulty, splits
    drawn), its label file and split lists, and the names of the films present.

    The same wherever the phantom is drawn. Its PNG bytes are not: their sizes change with the PNG
    encoder's build, and even the pixels differ from machine to machine in a few places by a few
    grey levels (floating point in NumPy and OpenCV; measured 0-15 of 16,384 pixels at 128 px, at
    most 9 levels, between the demo zoo's machine and another). The tables are drawn before any
    pixel and are exact everywhere.
    """
    digest = hashlib.sha256()
    hash_files(digest, [label_path, *list_paths])
    digest.update(json.dumps(identity, sort_keys=True).encode())
    digest.update("".join(f"{name}\n" for name in sorted(names)).encode())
    return digest.hexdigest()[:16]


def _items(
    table: pd.DataFrame, images: dict[str, os.DirEntry], labels: tuple[str, ...]
) -> pd.DataFrame:
    items = pd.DataFrame(
        {
            "image_id": table["image_id"].to_numpy(),
            "path": [images[name].path for name in table["image_id"].tolist()],
            "patient_id": table["patient_id"].to_numpy(dtype=np.int64),
            "age": table["age"].to_numpy(dtype=float),
            "sex": table["sex"].to_numpy(),
            "view": table["view"].to_numpy(),
            "split": table["split"].to_numpy(),
        }
    )
    for label in labels:
        items[label] = table[label].to_numpy(dtype=np.int64)
    return items


def _box_frame(root: Path) -> int | None:
    # The phantom writes its boxes in each image's own frame; the real file uses 1024 x 1024.
    return None if (root / PHANTOM_MARKER).exists() else BOX_FRAME


def read_boxes(
    root: Path,
    image_ids: set[str],
    images: dict[str, os.DirEntry],
    box_scale: int | None = BOX_FRAME,
) -> pd.DataFrame:
    """Boxes of `BBox_List_2017.csv` for `image_ids`, scaled from the `box_scale` frame (None: the
    image's own frame) to each image's pixel size read from its PNG header. Empty when no box file."""
    path = next((root / name for name in BOX_FILES if (root / name).is_file()), None)
    if path is None:
        return empty_boxes()
    rows = list(csv.reader(io.StringIO(_read_bytes(path).decode("utf-8-sig"))))
    if not rows or rows[0][0].strip() != "Image Index":
        raise DatasetError(f"{path.name} does not start with 'Image Index': use the NIH box file")
    records = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        image_id = row[0].strip()
        if image_id not in image_ids:
            continue
        label = canonical_label(row[1])
        try:
            x, y, w, h = (float(cell) for cell in row[2:6])
        except ValueError:
            raise DatasetError(
                f"{path.name} line {line}: box {row[2:6]} is not four numbers"
            ) from None
        if label not in ALL14:
            raise DatasetError(f"{path.name} line {line}: unknown finding {row[1]!r}")
        if box_scale is not None:
            width, height = png_size(images[image_id].path) or (box_scale, box_scale)
            x, w = x * width / box_scale, w * width / box_scale
            y, h = y * height / box_scale, h * height / box_scale
        records.append((image_id, label, x, y, w, h))
    return pd.DataFrame.from_records(records, columns=list(BOX_COLUMNS)).astype(
        {name: float for name in BOX_COLUMNS[2:]}
    )


def png_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header without decoding it; None for other files."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
