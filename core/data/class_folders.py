"""Class folders, as Kaggle and teaching sets ship them.

    ROOT/{train,val,test}/CLASS/*    any of the split folders may be absent
    ROOT/CLASS/*                     no split folders at all

A class named normal or "No Finding" (any case or spelling of that kind) means no finding; every
other class becomes a label (ChestX-ray14's spelling when it names one of its findings: PNEUMONIA
is Pneumonia). Films are PNG, JPEG or DICOM, in the class folder or below it. A copy unpacked into
a wrapper folder (`chest_xray/chest_xray/...`, with `__MACOSX/` beside it) is found by descending
through folders that hold nothing but one folder.

The test folder is the test split; train and val pool into training, from which validation is
carved by patient (`core.data.assemble`). Without a test folder, a seeded split by patient carves
one. Example: Kermany et al.'s "Chest X-Ray Images (Pneumonia)" (Cell 2018, CC BY 4.0), train
1,341 normal and 3,875 pneumonia films, test 234 and 390.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxr_attention.core.data.assemble import TEST, TRAIN, Films
from cxr_attention.core.data.index import Finding
from cxr_attention.core.data.naming import collection_title, kermany_counter_gaps
from cxr_attention.core.data.radiograph import SUPPORTED_SUFFIXES
from cxr_attention.core.data.scan import FolderScan, is_debris, scan_folder
from cxr_attention.core.errors import DatasetError
from cxr_attention.core.labels import finding_name, means_no_finding

SPLIT_FOLDERS = {
    "train": TRAIN,
    "training": TRAIN,
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": TEST,
    "testing": TEST,
}
_MAX_WRAPPERS = 4  # wrapper folders descended at most (chest_xray/chest_xray/ is two)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_dir() and not is_debris(p.name) and p.name[0] != "."
    )


def find_layout_root(root: Path) -> Path | None:
    """The folder that holds the split or class folders, descending through wrappers (a folder
    whose only folder holds folders itself), or None when there are no folders at all."""
    folder = root
    for _ in range(_MAX_WRAPPERS + 1):
        subfolders = _subfolders(folder)
        if not subfolders:
            return None
        is_split = any(p.name.lower() in SPLIT_FOLDERS for p in subfolders)
        if is_split or len(subfolders) > 1 or not _subfolders(subfolders[0]):
            return folder
        folder = subfolders[0]
    return folder


def looks_like_class_folders(root: Path) -> bool:
    """Whether `root` (or a wrapper inside it) holds split or class folders."""
    return root.is_dir() and find_layout_root(root) is not None


def read_class_folders(root: Path) -> Films:
    """The films of a class-folder collection, their classes and the split folders they sit in."""
    base = find_layout_root(root)
    if base is None:
        raise DatasetError(
            f"{root} holds no class folders: expected ROOT/CLASS/* or ROOT/train/CLASS/*"
        )
    findings: list[Finding] = []
    if base != root:
        findings.append(
            Finding("layout", 0, f"class folders found under {base.relative_to(root).as_posix()}/")
        )
    subfolders = _subfolders(base)
    split_folders = [p for p in subfolders if p.name.lower() in SPLIT_FOLDERS]
    scan = FolderScan()
    if split_folders:
        classes = {(p, SPLIT_FOLDERS[p.name.lower()]): _subfolders(p) for p in split_folders}
        ignored = [p for p in subfolders if p not in split_folders]
        if ignored:
            findings.append(
                Finding(
                    "folders_not_read",
                    len(ignored),
                    f"{len(ignored)} folders beside the split folders are not read",
                    tuple(p.name + "/" for p in ignored),
                )
            )
        for split_folder in split_folders:
            loose = scan_folder_top(split_folder)
            scan.debris += loose.debris
            if loose.films:
                findings.append(
                    Finding(
                        "films_outside_a_class",
                        len(loose.films),
                        f"{len(loose.films):,} films directly in {split_folder.name}/, outside any class folder",
                        tuple(p.name for p in loose.films[:3]),
                        "skipped",
                    )
                )
    else:
        classes = {(base, ""): subfolders}
        loose = scan_folder_top(base)
        scan.debris += loose.debris
    relatives, sizes, given, class_names = [], [], [], []
    for (_, split), class_folders in classes.items():
        for class_folder in class_folders:
            found = scan_folder(class_folder)
            if not found.films:
                raise DatasetError(
                    f"class folder {class_folder.relative_to(root).as_posix()}/ holds no films "
                    "(PNG, JPEG or DICOM): add its films or remove the folder"
                )
            scan.extend(found)
            for path in found.films:
                relatives.append(path.relative_to(base).as_posix())
                sizes.append(found.sizes[path])
                given.append(split if split != "val" else TRAIN)
                class_names.append(class_folder.name)
    findings += _scan_findings(scan, base, split_folders)
    labels, targets = _class_targets(class_names, root)
    findings.append(_classes_finding(class_names))
    findings += kermany_counter_gaps(relatives)
    return Films(
        root=base,
        relatives=relatives,
        sizes=sizes,
        given_split=given,
        targets=targets,
        labels=labels,
        findings=findings,
        title=collection_title(relatives),
    )


def scan_folder_top(folder: Path) -> FolderScan:
    """Films and debris directly in `folder` (not below it)."""
    top = FolderScan()
    for path in sorted(folder.iterdir()):
        if is_debris(path.name):
            top.debris.append(path)
        elif path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
            top.films.append(path)
    return top


def _class_targets(class_names: list[str], root: Path) -> tuple[tuple[str, ...], pd.DataFrame]:
    classes = sorted(set(class_names))
    if len(classes) < 2:
        raise DatasetError(
            f"{root} has one class ({classes[0] if classes else 'none'}): a classifier needs at "
            "least two class folders, e.g. NORMAL and PNEUMONIA"
        )
    findings = {name: finding_name(name) for name in classes if not means_no_finding(name)}
    if not findings:
        raise DatasetError(
            f"every class of {root} means no finding ({', '.join(classes)}): add a class with one"
        )
    labels = tuple(sorted(set(findings.values())))
    names = np.asarray(class_names, dtype=object)
    targets = pd.DataFrame(
        {label: np.isin(names, [c for c, f in findings.items() if f == label]) for label in labels}
    ).astype(np.int64)
    return labels, targets


def _classes_finding(class_names: list[str]) -> Finding:
    names, counts = np.unique(np.asarray(class_names, dtype=object), return_counts=True)
    parts = [
        f"{name} {count:,}"
        + (" (no finding)" if means_no_finding(name) else f" -> {finding_name(name)}")
        for name, count in zip(names, counts, strict=True)
    ]
    return Finding("classes", len(names), "classes: " + ", ".join(parts))


def _scan_findings(scan: FolderScan, base: Path, split_folders: list[Path]) -> list[Finding]:
    findings = []
    if split_folders:
        found = sorted({SPLIT_FOLDERS[p.name.lower()] for p in split_folders})
        absent = [s for s in (TRAIN, "val", TEST) if s not in found]
        message = f"split folders: {', '.join(p.name + '/' for p in split_folders)}"
        if absent:
            message += f" ({', '.join(absent)} absent)"
        action = "validation is carved by patient from the training films"
        if "val" in found:
            action = "val/ joins train/; " + action
        if TEST not in found:
            action += "; with no test/ a seeded split by patient carves the test films"
        findings.append(Finding("splits", len(split_folders), message, action=action))
    else:
        findings.append(
            Finding(
                "splits",
                0,
                "no split folders",
                action="a seeded split by patient carves test and validation films",
            )
        )
    if scan.debris:
        findings.append(
            Finding(
                "debris",
                len(scan.debris),
                f"{len(scan.debris):,} pieces of archive and desktop debris (.DS_Store, __MACOSX/, ._*)",
                tuple(p.relative_to(base).as_posix() for p in scan.debris[:3]),
                "skipped",
            )
        )
    if scan.other:
        findings.append(
            Finding(
                "other_files",
                len(scan.other),
                f"{len(scan.other):,} files that are not images",
                tuple(p.relative_to(base).as_posix() for p in scan.other[:3]),
                "skipped",
            )
        )
    if scan.unreadable:
        findings.append(
            Finding(
                "unreadable",
                len(scan.unreadable),
                f"{len(scan.unreadable):,} image files that cannot be read: "
                + "; ".join(
                    f"{p.relative_to(base).as_posix()}: {why}" for p, why in scan.unreadable[:3]
                ),
                tuple(p.relative_to(base).as_posix() for p, _ in scan.unreadable),
                "skipped",
            )
        )
    return findings
