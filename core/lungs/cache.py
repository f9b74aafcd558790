"""The lung fields of every film of a dataset, found once: what a lung prior and the lung term read.

    DATA/.cxr-cache/<name>/lungs-<lung model identity>/fields.u8   uint8 (N, S, S), 1 = lung field,
                                                                 in the lung model's view (S)
    DATA/.cxr-cache/<name>/lungs-<lung model identity>/index.json  image ids (row order), files
                                                                 fingerprint, refused films and why

The fields are the collection's own lung masks where it has them (`own_lung_mask`: the phantom's
`lungs/`, realdata-lungs' `masks/`), else the lung model's (`segment_lungs`, as `predict` and the
app find them). A film whose field the lung model refuses has an empty row and is listed;
training leaves it out. A cache whose files fingerprint no longer matches the folder is rebuilt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxr_attention.core.data.cache import index_cache_folder
from cxr_attention.core.data.index import DatasetIndex
from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import DatasetError, RadiographError
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.pairs import own_lung_mask
from cxr_attention.core.lungs.segment import fields_from_view, resize_mask, segment_views
from cxr_attention.core.progress import progress_bar

FIELDS, INDEX = "fields.u8", "index.json"
BATCH = 32


@dataclass(eq=False)
class LungCache:
    """The lung fields of a dataset's films, opened read-only."""

    folder: Path
    size: int
    image_ids: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)
    _array: np.memmap | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._rows = {image_id: row for row, image_id in enumerate(self.image_ids)}

    def __getstate__(self) -> dict:
        return dict(self.__dict__) | {"_array": None}

    @property
    def array(self) -> np.memmap:
        if self._array is None:
            shape = (len(self.image_ids), self.size, self.size)
            self._array = np.memmap(self.folder / FIELDS, dtype=np.uint8, mode="r", shape=shape)
        return self._array

    def fields(self, image_ids: Sequence[str], size: int) -> np.ndarray:
        """bool (n, size, size): each film's field in a view of `size` (empty where refused)."""
        out = np.zeros((len(image_ids), size, size), bool)
        for k, image_id in enumerate(image_ids):
            row = self._rows.get(image_id)
            if row is not None and image_id not in self.refused:
                out[k] = resize_mask(np.asarray(self.array[row]) > 0, size)
        return out


def lung_cache_folder(index: DatasetIndex, model: LungModel) -> Path:
    return index_cache_folder(index, 0).parent / f"lungs-{model.identity}"


def open_lung_cache(index: DatasetIndex, model: LungModel) -> LungCache | None:
    """The up-to-date lung cache of `index` by `model`, or None."""
    folder = lung_cache_folder(index, model)
    try:
        record = json.loads((folder / INDEX).read_text())
    except (OSError, ValueError):
        return None
    ids = tuple(record.get("image_ids", ()))
    size = int(record.get("size", 0))
    data = folder / FIELDS
    if (
        record.get("files") != index.files_fingerprint
        or not set(index.items["image_id"]).issubset(ids)
        or not data.is_file()
        or data.stat().st_size != len(ids) * size * size
    ):
        return None
    return LungCache(folder, size, ids, dict(record.get("refused", {})))


def build_lung_cache(index: DatasetIndex, model: LungModel, progress: bool = True) -> LungCache:
    """Find the lung fields of every film of `index` (unless an up-to-date cache exists)."""
    existing = open_lung_cache(index, model)
    if existing is not None:
        return existing
    folder = lung_cache_folder(index, model)
    size = model.image_size
    ids = index.items["image_id"].tolist()
    paths = index.items["path"].tolist()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{FIELDS}.partial-{os.getpid()}"
        array = np.memmap(partial, dtype=np.uint8, mode="w+", shape=(len(ids), size, size))
    except OSError as exc:
        raise DatasetError(f"cannot write the lung fields into {folder} ({exc.strerror})") from None
    refused: dict[str, str] = {}
    with progress_bar(total=len(ids), unit="img", desc="lung fields", enabled=progress) as bar:
        for start in range(0, len(ids), BATCH):
            rows, views, shapes = [], [], []
            for row in range(start, min(start + BATCH, len(ids))):
                own = own_lung_mask(paths[row])
                try:
                    if own is not None:
                        mask = load_radiograph(own).pixels > 0.5
                        array[row] = model_view(mask.astype(np.float32), size) >= 128
                        continue
                    film = load_radiograph(paths[row])
                except RadiographError as exc:
                    refused[ids[row]] = str(exc)
                    continue
                rows.append(row)
                views.append(model_view(film, size))
                shapes.append((film.height, film.width))
            if views:
                probabilities, scores = segment_views(np.stack(views), model)
                scores = [None] * len(rows) if scores is None else [float(s) for s in scores]
                for row, view, p, shape, score in zip(
                    rows, views, probabilities, shapes, scores, strict=True
                ):
                    found = fields_from_view(view, p, shape, model, score)
                    if found.plausible:
                        array[row] = found.view_mask
                    else:
                        refused[ids[row]] = str(found.check.reason)
            bar.update(min(BATCH, len(ids) - start))
    array.flush()
    del array
    (folder / INDEX).unlink(missing_ok=True)
    os.replace(partial, folder / FIELDS)
    record = {
        "image_ids": ids,
        "size": size,
        "files": index.files_fingerprint,
        "lung_model": model.identity,
        "refused": refused,
    }
    (folder / INDEX).write_text(json.dumps(record) + "\n")
    return LungCache(folder, size, tuple(ids), refused)
