"""A table of films: a CSV of image paths and one column per label.

    path,Pneumonia,Effusion,patient,sex,age,view,split
    films/a.png,1,,p001,F,63,PA,train

- The path column (path, image, file, filename, Path, ...) holds paths relative to the CSV's
  folder. CheXpert writes them from the folder above (`CheXpert-v1.0-small/train/...` in
  `CheXpert-v1.0-small/train.csv`): when the paths start with the CSV folder's own name they are
  read from its parent. A path that leaves that folder (`../x.png`, `/etc/x.png`) is refused.
- A label column holds 1, 0 or nothing (0: not found) and, as CheXpert writes it, -1 for
  "uncertain", read by the stated policy: `zeros` (U-Zeros, the default) or `ones` (U-Ones). A
  column meaning "No Finding" is not a label. Columns holding other values are metadata, and
  reported as not used unless they are one of the optional columns: patient, sex, age, view (PA,
  AP, ...) and split (train, val, test).
- Films listed but absent are left out with one warning; the collection's own rules (patients,
  splits, duplicates) are `core.data.assemble`'s.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from cxr_attention.core.data.assemble import TEST, TRAIN, Films
from cxr_attention.core.data.index import DatasetWarning, Finding
from cxr_attention.core.data.scan import probe_film
from cxr_attention.core.errors import ConfigError, DatasetError
from cxr_attention.core.labels import finding_name, means_no_finding

UNCERTAIN_POLICIES = ("zeros", "ones")
MAX_AGE_YEARS = 120


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# Optional columns, by the spellings people use (compared without case, spaces or punctuation).
COLUMNS: dict[str, tuple[str, ...]] = {
    "path": ("path", "image", "imagepath", "file", "filename", "filepath", "imageindex", "img"),
    "patient": ("patient", "patientid", "subject", "subjectid"),
    "sex": ("sex", "gender", "patientgender", "patientsex"),
    "age": ("age", "patientage"),
    "view": ("view", "viewposition", "appa", "projection"),
    "split": ("split", "subset", "partition"),
}
SPLIT_VALUES = {
    "train": TRAIN,
    "training": TRAIN,
    "val": TRAIN,
    "valid": TRAIN,
    "validation": TRAIN,
    "dev": TRAIN,
    "test": TEST,
    "testing": TEST,
}
_LABEL_VALUES = frozenset({"", "1", "0", "-1", "1.0", "0.0", "-1.0"})


def looks_like_table(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".csv", ".gz") and ".csv" in path.name.lower()


def read_table(csv_path: Path, uncertain: str = "zeros") -> Films:
    """The films a CSV lists, their labels, the optional columns, and what was noticed."""
    if uncertain not in UNCERTAIN_POLICIES:
        raise ConfigError(
            f"--uncertain {uncertain!r}: choose one of {', '.join(UNCERTAIN_POLICIES)}"
        )
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{csv_path.name} cannot be read as a CSV table ({exc})") from None
    table.columns = [str(c).strip() for c in table.columns]
    found = {role: _find_column(table, spellings) for role, spellings in COLUMNS.items()}
    if found["path"] is None:
        raise DatasetError(
            f"{csv_path.name} has no path column: name one of path, image, file or filename "
            f"(its columns: {', '.join(table.columns[:8])})"
        )
    findings: list[Finding] = []
    paths = table[found["path"]].str.strip()
    if paths.eq("").any():
        raise DatasetError(
            f"{csv_path.name} row {int(paths.eq('').idxmax()) + 2} has an empty path"
        )
    duplicated = paths.duplicated()
    if duplicated.any():
        raise DatasetError(f"{csv_path.name} lists {paths[duplicated].iloc[0]} more than once")
    root = _paths_root(csv_path, paths)
    relatives = [_inside(root, value, csv_path.name, row) for row, value in enumerate(paths)]
    labels, targets = _labels(table, found, uncertain, csv_path.name, findings)
    keep, sizes = _present(root, relatives, csv_path.name, findings)
    given = (
        _given_splits(table[found["split"]], csv_path.name)
        if found["split"]
        else np.full(len(table), "", dtype=object)
    )
    films = Films(
        root=root,
        relatives=relatives,
        sizes=sizes,
        given_split=list(given),
        targets=targets,
        labels=labels,
        age=_ages(table[found["age"]]) if found["age"] else None,
        sex=_codes(table[found["sex"]]) if found["sex"] else None,
        view=_codes(table[found["view"]]) if found["view"] else None,
        patients=_patients(table[found["patient"]], relatives) if found["patient"] else None,
        findings=findings,
    )
    films.keep(keep)
    return films


def _find_column(table: pd.DataFrame, spellings: tuple[str, ...]) -> str | None:
    by_key = {_key(column): column for column in table.columns}
    return next((by_key[s] for s in spellings if s in by_key), None)


def _paths_root(csv_path: Path, paths: pd.Series) -> Path:
    folder = csv_path.parent.resolve()
    first = PurePosixPath(paths.iloc[0].replace("\\", "/")).parts
    if first and first[0] == folder.name and not (folder / paths.iloc[0]).exists():
        return folder.parent  # CheXpert: paths written from the folder above the CSV
    return folder


def _inside(root: Path, value: str, table_name: str, row: int) -> str:
    """`value` as a path relative to `root`, refusing one that leaves it (by its name: a link
    inside the folder may point elsewhere, as the user chose)."""
    resolved = Path(os.path.normpath(root / value.replace("\\", "/")))
    if not resolved.is_relative_to(root):
        raise DatasetError(
            f"{table_name} row {row + 2}: {value} lies outside {root}: list paths relative to the "
            "CSV's folder, inside it"
        )
    return resolved.relative_to(root).as_posix()


def _labels(
    table: pd.DataFrame, found: dict, uncertain: str, name: str, findings: list[Finding]
) -> tuple[tuple[str, ...], pd.DataFrame]:
    roles = {column for column in found.values() if column}
    label_columns, unused, no_finding = [], [], []
    for column in table.columns:
        if column in roles:
            continue
        values = set(table[column].str.strip().unique().tolist())
        if values <= _LABEL_VALUES and values - {""}:
            (no_finding if means_no_finding(column) else label_columns).append(column)
        else:
            unused.append(column)
    if not label_columns:
        raise DatasetError(
            f"{name} has no label column (one per finding, holding 1, 0, empty or -1)"
        )
    if no_finding:
        findings.append(
            Finding(
                "no_finding_column",
                1,
                f"column {no_finding[0]} means no finding",
                action="not a label",
            )
        )
    if unused:
        findings.append(
            Finding(
                "columns_not_used",
                len(unused),
                f"{len(unused)} columns that are not labels",
                tuple(unused),
            )
        )
    raw = table[label_columns].apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce"))
    n_uncertain = (raw == -1).sum()
    if n_uncertain.sum():
        with_any = [f"{c} {int(n):,}" for c, n in n_uncertain.items() if n]
        findings.append(
            Finding(
                "uncertain_labels",
                int(n_uncertain.sum()),
                f"{int(n_uncertain.sum()):,} uncertain (-1) labels: {', '.join(with_any)}",
                action=f"read as {'1' if uncertain == 'ones' else '0'} (--uncertain {uncertain})",
            )
        )
    values = raw.replace(-1, 1 if uncertain == "ones" else 0).fillna(0).astype(np.int64)
    labels = tuple(finding_name(column) for column in label_columns)
    if len(set(labels)) != len(labels):
        raise DatasetError(f"{name} has two columns for one label: {', '.join(label_columns)}")
    values.columns = list(labels)
    return labels, values.reset_index(drop=True)


def _present(
    root: Path, relatives: list[str], name: str, findings: list[Finding]
) -> tuple[np.ndarray, list[int]]:
    keep = np.zeros(len(relatives), dtype=bool)
    sizes = [0] * len(relatives)
    absent, unreadable = [], []
    for i, relative in enumerate(relatives):
        path = root / relative
        if not path.is_file():
            absent.append(relative)
            continue
        kind, sizes[i] = probe_film(path)
        if kind == "film":
            keep[i] = True
        else:
            unreadable.append(f"{relative}: {kind}")
    if absent and len(absent) == len(relatives):
        raise DatasetError(
            f"none of the {len(relatives):,} films {name} lists is under {root} "
            f"(e.g. {absent[0]}): paths are read relative to the CSV's folder"
        )
    if absent:
        warnings.warn(
            f"{len(absent):,} of {len(relatives):,} films listed in {name} are absent "
            f"(e.g. {absent[0]}): using the {len(relatives) - len(absent):,} present",
            DatasetWarning,
            stacklevel=4,
        )
        findings.append(
            Finding(
                "absent",
                len(absent),
                f"{len(absent):,} films listed but absent",
                tuple(absent[:3]),
                "left out",
            )
        )
    if unreadable:
        findings.append(
            Finding(
                "unreadable",
                len(unreadable),
                f"{len(unreadable):,} image files that cannot be read: "
                + "; ".join(unreadable[:3]),
                tuple(u.split(":")[0] for u in unreadable),
                "skipped",
            )
        )
    return keep, sizes


def _given_splits(column: pd.Series, name: str) -> np.ndarray:
    values = column.str.strip().str.lower()
    unknown = sorted(set(values) - set(SPLIT_VALUES) - {""})
    if unknown:
        raise DatasetError(
            f"{name}: split value {unknown[0]!r} is none of train, val, test (or empty)"
        )
    return values.map(lambda v: SPLIT_VALUES.get(v, "")).to_numpy(dtype=object)


def _patients(column: pd.Series, relatives: list[str]) -> list[str]:
    return [
        f"patient:{value.strip()}" if value.strip() else f"film:{relative}"
        for value, relative in zip(column.tolist(), relatives, strict=True)
    ]


def _codes(column: pd.Series) -> np.ndarray:
    sexes = {"MALE": "M", "FEMALE": "F"}
    cleaned = column.str.strip().str.upper()
    return cleaned.map(lambda v: sexes.get(v, v)).to_numpy(dtype=object)


def _ages(column: pd.Series) -> np.ndarray:
    ages = pd.to_numeric(column.str.extract(r"^\s*(\d+(?:\.\d+)?)", expand=False), errors="coerce")
    return ages.where(ages <= MAX_AGE_YEARS).to_numpy(dtype=float)
