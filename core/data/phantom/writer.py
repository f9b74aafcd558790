"""Writing a phantom set to disk in exactly the ChestX-ray14 layout.

```
OUT/
  images/00000001_000.png ...        8-bit grayscale, size x size
  masks/00000001_000_Nodule.png ...  0/255, size x size, one per localized finding
  lungs/00000001_000.png ...         0/255, size x size, the lung fields (anatomical: the lung
                                     that a finding made dense stays lung), as realdata-lungs'
                                     masks/ are for its films/
  Data_Entry_2017_v2020.csv          the real header and columns
  BBox_List_2017.csv                 the real six-cell header; boxes from the masks, in pixels
  train_val_list.txt, test_list.txt  patient-disjoint, no trailing newline (as the real ones)
  PHANTOM.json                       generator, n, size, seed, splits drawn, prevalences;
                                     "synthetic"
```

Images are drawn in parallel over chunks; each image depends only on (seed, index, size), so the
files are byte-identical whatever the number of workers. `splits` draws the films of some splits
only (the demo's evaluation phantom: its test films); those films, their rows and their list are
exactly the full set's, the other list is empty.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cxr_attention import core
from cxr_attention.core.data.phantom.case import render_case
from cxr_attention.core.data.phantom.casemix import PlannedImage, design_prevalence, plan_dataset
from cxr_attention.core.data.phantom.difficulty import DEFAULT_DIFFICULTY
from cxr_attention.core.data.phantom.difficulty import difficulty as as_difficulty
from cxr_attention.core.data.phantom.lesions import LOCALIZED
from cxr_attention.core.errors import ConfigError, DatasetError, RunError
from cxr_attention.core.labels import ALL14, NO_FINDING

GENERATOR_VERSION = "1.1"  # 1.1: difficulty settings ("teaching" by default)

DATA_ENTRY = "Data_Entry_2017_v2020.csv"
BBOX_LIST = "BBox_List_2017.csv"
TRAIN_VAL_LIST = "train_val_list.txt"
TEST_LIST = "test_list.txt"
MANIFEST = "PHANTOM.json"
SPLITS: tuple[str, ...] = ("train_val", "test")  # the lists' splits, as `PlannedImage.split`

DATA_ENTRY_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
BOX_FILE_SPELLING = {"Infiltration": "Infiltrate"}  # the real box file's spelling
FIELD_OF_VIEW_MM = 430.0  # a 43 cm detector: the phantom's pixel spacing is this over the size

MIN_SIZE, MAX_SIZE = 32, 4096
LUNGS = "lungs"  # the lung-field masks, one per film under the film's name
# Findings whose masks lie outside the lung fields (the heart; abdominal content in the chest)
NOT_IN_LUNGS = frozenset({"Cardiomegaly", "Hernia"})


def lung_fields(case) -> np.ndarray:
    """A drawn film's lung fields: the visible lung with every lung finding's mask inside it, so
    that a dense lung stays lung (bool (S, S))."""
    field = case.lung_field.copy()
    for label, mask in case.masks.items():
        if label not in NOT_IN_LUNGS:
            field |= mask
    return field


@dataclass(frozen=True)
class PhantomSummary:
    """What `generate_phantom` wrote."""

    root: Path
    n_images: int
    n_patients: int
    size: int
    seed: int
    seconds: float
    prevalence: dict[str, float]  # label -> fraction of images, ALL14 order

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


def mask_name(image_id: str, label: str) -> str:
    """File name of a finding's mask: <image stem>_<Label>.png."""
    return f"{Path(image_id).stem}_{label}.png"


def generate_phantom(
    out: str | Path,
    n: int,
    size: int = 256,
    seed: int = 0,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    difficulty: str = DEFAULT_DIFFICULTY,
    splits: Collection[str] = SPLITS,
) -> PhantomSummary:
    """Write a synthetic chest-radiograph set of `n` images of `size` x `size` pixels into `out`.

    `difficulty` is "teaching" (the default: findings plain enough to learn on a CPU in minutes) or
    "research" (as subtle as real films; see difficulty.py).
    Deterministic in (n, size, seed, difficulty): the same arguments give byte-identical files for any
    `workers` (default: all cores). `out` must be empty or absent, or hold an earlier phantom set
    and `overwrite=True`. `progress`, if given, is called with the number of images just finished.
    `splits` ("train_val", "test" or both, the default) says whose films are drawn: the n films
    are planned all the same, so a split's films are those of the whole set.
    """
    n, size, seed = _check_arguments(n, size, seed)
    setting = as_difficulty(difficulty).name
    workers = _worker_count(workers)
    drawn = _check_splits(splits)
    plan = [p for p in plan_dataset(n, seed) if p.split in drawn]
    if not plan:
        raise ConfigError(f"{n} films hold none of the split {'/'.join(drawn)}: draw more")
    root = _prepare_folder(Path(out), overwrite)
    started = time.perf_counter()
    rows: list[dict] = []
    for chunk_rows in _render_all(plan, size, seed, setting, root, workers):
        rows.extend(chunk_rows)
        if progress is not None:
            progress(len(chunk_rows))
    rows.sort(key=lambda row: row["index"])
    _write_data_entry(root, plan, rows, size)
    _write_lists(root, plan)
    _write_boxes(root, rows)
    prevalence = {
        label: sum(label in row["findings"] for row in rows) / len(rows) for label in ALL14
    }
    _write_manifest(root, n, drawn, plan, rows, size, seed, setting, prevalence)
    return PhantomSummary(
        root=root,
        n_images=len(plan),
        n_patients=len({p.patient_id for p in plan}),
        size=size,
        seed=seed,
        seconds=time.perf_counter() - started,
        prevalence=prevalence,
    )


# ------------------------------------------------------------------------------ arguments
def _check_arguments(n: int, size: int, seed: int) -> tuple[int, int, int]:
    if int(n) < 1:
        raise ConfigError(f"--n must be at least 1 image (got {n})")
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ConfigError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (got {size})")
    if int(seed) < 0:
        raise ConfigError(f"--seed must be a non-negative integer (got {seed})")
    return int(n), int(size), int(seed)


def _check_splits(splits: Collection[str]) -> tuple[str, ...]:
    chosen = (splits,) if isinstance(splits, str) else tuple(splits)
    unknown = [name for name in chosen if name not in SPLITS]
    if unknown or not chosen:
        raise ConfigError(f"unknown phantom split {unknown or chosen}: choose from {SPLITS}")
    return tuple(name for name in SPLITS if name in chosen)


def _worker_count(workers: int | None) -> int:
    if workers is None:
        return max(1, os.cpu_count() or 1)
    if int(workers) < 1:
        raise ConfigError(f"--workers must be at least 1 (got {workers})")
    return int(workers)


def _prepare_folder(root: Path, overwrite: bool) -> Path:
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file: choose a folder name for the phantom set")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MANIFEST).is_file():
            raise DatasetError(
                f"{root} is not empty and holds no phantom set: choose an empty or new folder"
            )
        if not overwrite:
            raise DatasetError(
                f"{root} already holds a phantom set: pass --overwrite to replace it"
            )
        for name in ("images", "masks", LUNGS):
            shutil.rmtree(root / name, ignore_errors=True)
        for name in (DATA_ENTRY, BBOX_LIST, TRAIN_VAL_LIST, TEST_LIST, MANIFEST):
            (root / name).unlink(missing_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    (root / LUNGS).mkdir(exist_ok=True)
    return root


# ------------------------------------------------------------------------------- drawing
def _chunks(plan: list[PlannedImage], workers: int) -> list[list[PlannedImage]]:
    # Several chunks per worker balance the load; chunks of >= 8 keep the overhead small.
    chunk = max(8, min(64, len(plan) // (workers * 4) or 1))
    return [plan[i : i + chunk] for i in range(0, len(plan), chunk)]


def _render_all(
    plan: list[PlannedImage], size: int, seed: int, difficulty: str, root: Path, workers: int
) -> Iterator[list[dict]]:
    chunks = _chunks(plan, workers)
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            yield _render_chunk(chunk, size, seed, difficulty, str(root))
        return
    context = multiprocessing.get_context("spawn")  # safe beside threads (torch, OpenCV)
    try:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(chunks)), mp_context=context, initializer=_init_worker
        ) as pool:
            futures = [
                pool.submit(_render_chunk, c, size, seed, difficulty, str(root)) for c in chunks
            ]
            for future in futures:
                yield future.result()
    except BrokenProcessPool:
        raise RunError(
            "phantom worker processes died: from a script, call generate_phantom under "
            "`if __name__ == '__main__':`, or pass workers=1 (--workers 1)"
        ) from None


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads only contend


def _render_chunk(
    chunk: list[PlannedImage], size: int, seed: int, difficulty: str, root: str
) -> list[dict]:
    """Draw and write a chunk of images and masks; returns their rows for the tables."""
    rows = []
    images, masks = Path(root) / "images", Path(root) / "masks"
    for plan in chunk:
        case = render_case(plan, size, seed, difficulty=difficulty)
        _write_png(images / plan.image_id, case.image)
        _write_png(Path(root) / LUNGS / plan.image_id, lung_fields(case).astype(np.uint8) * 255)
        for label, mask in case.masks.items():
            _write_png(masks / mask_name(plan.image_id, label), mask.astype(np.uint8) * 255)
        rows.append(
            {
                "index": plan.index,
                "image_id": plan.image_id,
                "findings": case.findings,
                "view": case.view,
                "boxes": case.boxes,
            }
        )
    return rows


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise DatasetError(f"could not encode {path.name} as PNG")
    path.write_bytes(encoded.tobytes())


# -------------------------------------------------------------------------------- tables
def _write_data_entry(root: Path, plan: list[PlannedImage], rows: list[dict], size: int) -> None:
    spacing = f"{FIELD_OF_VIEW_MM / size:.4g}"
    lines = [DATA_ENTRY_HEADER]
    for p, row in zip(plan, rows, strict=True):
        labels = "|".join(row["findings"]) or NO_FINDING
        lines.append(
            f"{p.image_id},{labels},{p.follow_up},{p.patient_id},{p.age},{p.sex},{row['view']},"
            f"{size},{size},{spacing},{spacing}"
        )
    (root / DATA_ENTRY).write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def _write_lists(root: Path, plan: list[PlannedImage]) -> None:
    for name, split in ((TRAIN_VAL_LIST, "train_val"), (TEST_LIST, "test")):
        names = [p.image_id for p in plan if p.split == split]
        (root / name).write_text("\n".join(names), encoding="utf-8", newline="\n")


def _write_boxes(root: Path, rows: list[dict]) -> None:
    entries = []
    for row in rows:
        for label, (x, y, w, h) in row["boxes"].items():
            entries.append((label, row["image_id"], x, y, w, h))
    entries.sort()
    lines = [BBOX_HEADER] + [
        f"{image_id},{BOX_FILE_SPELLING.get(label, label)},{x},{y},{w},{h}"
        for label, image_id, x, y, w, h in entries
    ]
    (root / BBOX_LIST).write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def _write_manifest(
    root: Path,
    n: int,
    drawn: tuple[str, ...],
    plan: list[PlannedImage],
    rows: list[dict],
    size: int,
    seed: int,
    difficulty: str,
    prevalence: dict[str, float],
) -> None:
    manifest = {
        "generator": "cxr-attention phantom",
        "generator_version": GENERATOR_VERSION,
        "package_version": core.__version__,
        "note": "synthetic, not patient data",
        "n": n,  # films planned; those of `splits` are drawn
        "size": size,
        "seed": seed,
        "difficulty": difficulty,
        "splits": list(drawn),
        "n_patients": len({p.patient_id for p in plan}),
        "split": {
            "train_val": sum(p.split == "train_val" for p in plan),
            "test": sum(p.split == "test" for p in plan),
        },
        "labels": list(ALL14),
        "localized": [label for label in ALL14 if label in LOCALIZED],
        "prevalence": {label: round(prevalence[label], 6) for label in ALL14},
        "no_finding": round(sum(not row["findings"] for row in rows) / len(rows), 6),
        "design_prevalence": design_prevalence(difficulty),
        "views": {view: sum(row["view"] == view for row in rows) for view in ("PA", "AP")},
        "pixel_spacing_mm": round(FIELD_OF_VIEW_MM / size, 6),
        "masks": "masks/<image stem>_<Label>.png: 0/255, image size, one per localized finding",
        "boxes": "BBox_List_2017.csv: x, y, w, h in pixels of the image, the masks' bounding boxes",
    }
    text = json.dumps(manifest, indent=2) + "\n"
    (root / MANIFEST).write_text(text, encoding="utf-8", newline="\n")
