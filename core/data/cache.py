"""A uint8 image cache: every radiograph of a dataset decoded once, at the model's image size.

Decoding a 1024 x 1024 PNG costs ~10 ms; reading the same image from a memory-mapped array costs
microseconds, so training reads the cache and never starves the GPU. Layout:

    DATA/.cxr-cache/<size>/images.u8    raw uint8, shape (N, size, size), C order (np.memmap)
    DATA/.cxr-cache/<size>/index.json   image ids (row order), dataset and files fingerprints,
                                        size, preprocessing version, unreadable images and why

Each row is exactly `model_view(load_radiograph(path).pixels, size)`, the one preprocessing path.
A cache whose files fingerprint (`DatasetIndex.files_fingerprint`: names and byte sizes) no longer
matches the folder (files added, removed or replaced) is stale: readers ignore it with a warning,
and `build_cache` rebuilds it.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxr_attention.core.data.index import DatasetIndex, DatasetWarning
from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import ConfigError, DatasetError, RadiographError
from cxr_attention.core.progress import progress_bar

CACHE_DIR = ".cxr-cache"
DATA_FILE = "images.u8"
INDEX_FILE = "index.json"
CACHE_FORMAT = 1
# Bump when load_radiograph or model_view change what they return: older caches become stale.
PREPROCESSING_VERSION = 2  # 2: quantise to uint8 before resizing
_CHUNK = 32  # at most this many images per task handed to a worker process


def cache_folder(root: str | Path, size: int, name: str = "") -> Path:
    """Where the cache of a dataset folder at one image size lives (`name`: a table's own, beside
    other tables in one folder)."""
    return Path(root) / CACHE_DIR / name / str(int(size))


def index_cache_folder(index: DatasetIndex, size: int) -> Path:
    """Where the cache of `index` at one image size lives."""
    return cache_folder(index.root, size, index.cache_name)


def decode_model_view(path: str | Path, size: int) -> np.ndarray:
    """One file as the model sees it before normalisation: uint8 (size, size). Same as a cache row."""
    return model_view(load_radiograph(path), size)


@dataclass(eq=False)
class ImageCache:
    """A built cache, opened read-only. Rows are read through a lazily opened `np.memmap`, which is
    reopened (not copied) when the cache is pickled into DataLoader worker processes."""

    folder: Path
    size: int
    image_ids: tuple[str, ...]
    fingerprint: str  # of the files it was built from (`DatasetIndex.files_fingerprint`)
    unreadable: dict[str, str] = field(default_factory=dict)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)
    _array: np.memmap | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._rows = {
            image_id: row
            for row, image_id in enumerate(self.image_ids)
            if image_id not in self.unreadable
        }

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None
        return state

    @property
    def array(self) -> np.memmap:
        """The whole cache, uint8 (N, size, size), memory-mapped read-only."""
        if self._array is None:
            shape = (len(self.image_ids), self.size, self.size)
            self._array = np.memmap(self.folder / DATA_FILE, dtype=np.uint8, mode="r", shape=shape)
        return self._array

    def rows(self, image_ids: Sequence[str]) -> np.ndarray:
        """int64 row of each image id; -1 where the cache has no usable image."""
        return np.array([self._rows.get(image_id, -1) for image_id in image_ids], dtype=np.int64)

    def read(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """uint8 (n, size, size) images of `rows`, read in one sorted pass over the file."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), self.size, self.size), dtype=np.uint8)
        out[order] = self.array[rows[order]]
        return out

    def covers(self, image_ids: Sequence[str]) -> bool:
        """Whether every id is in the cache (as an image, or as known unreadable)."""
        known = set(self.image_ids)
        return all(image_id in known for image_id in image_ids)


def open_cache(folder: str | Path) -> ImageCache:
    """Open a cache folder; DatasetError when its files are missing or damaged."""
    folder = Path(folder)
    try:
        index = json.loads((folder / INDEX_FILE).read_text())
        size, image_ids = int(index["size"]), tuple(index["image_ids"])
        # caches before "files" recorded the files fingerprint as "fingerprint"
        fingerprint = str(index.get("files", index["fingerprint"]))
        version = int(index["preprocessing_version"])
        unreadable = dict(index.get("unreadable", {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"cache index {folder / INDEX_FILE} is unreadable ({exc}): rebuild it"
        ) from None
    if index.get("format") != CACHE_FORMAT or version != PREPROCESSING_VERSION:
        raise DatasetError(
            f"cache {folder} was made by another version of the preprocessing: rebuild it with "
            f"`cxr-attention cache DATA --size {size}`"
        )
    data = folder / DATA_FILE
    expected = len(image_ids) * size * size
    if not data.is_file() or data.stat().st_size != expected:
        raise DatasetError(f"cache data {data} is missing or truncated: rebuild it")
    return ImageCache(folder, size, image_ids, fingerprint, unreadable)


def check_cache(index: DatasetIndex, size: int) -> tuple[ImageCache | None, str]:
    """(cache, "") when the cache of `index` at `size` is usable; else (None, why not), where why
    is "" when no cache was ever built, or says what is stale, damaged or incomplete."""
    folder = index_cache_folder(index, size)
    if not (folder / INDEX_FILE).is_file():
        return None, ""
    try:
        cache = open_cache(folder)
    except DatasetError as exc:
        return None, str(exc)
    if cache.fingerprint != index.files_fingerprint:
        return None, (
            f"it is stale, built from other files (fingerprint {cache.fingerprint}, "
            f"folder now {index.files_fingerprint})"
        )
    if cache.size != size or not cache.covers(index.items["image_id"].tolist()):
        return None, "it lacks images of this selection"
    return cache, ""


def find_cache(index: DatasetIndex, size: int) -> ImageCache | None:
    """The usable cache of `index` at `size`, or None. Only a cache whose fingerprint matches the
    folder is used; one that exists but is stale, damaged or incomplete is ignored with a warning."""
    cache, reason = check_cache(index, size)
    if reason:
        warnings.warn(
            f"ignoring image cache {index_cache_folder(index, size)}: {reason}; run "
            f"`cxr-attention cache {index.root} --size {size}` to rebuild it",
            DatasetWarning,
            stacklevel=2,
        )
    return cache


def build_cache(
    index: DatasetIndex,
    size: int,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> ImageCache:
    """Decode every image of `index` once into `index_cache_folder(index, size)`.

    A cache that is already up to date is returned as is unless `force`; a stale one is replaced.
    `workers` processes (default: all cores) decode in parallel and write straight into the
    memory-mapped file. Unreadable images are skipped (their rows stay black), recorded in the index
    and reported in one warning.
    """
    if size < 32:
        raise ConfigError(f"cache size {size} px is too small: use at least 32")
    workers = max(1, int(workers or os.cpu_count() or 1))
    folder = index_cache_folder(index, size)
    image_ids = index.items["image_id"].tolist()
    if not force:
        existing, _ = check_cache(index, size)
        if existing is not None:
            return existing
    partial = folder / f"{DATA_FILE}.partial-{os.getpid()}"
    shape = (len(image_ids), size, size)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        np.memmap(partial, dtype=np.uint8, mode="w+", shape=shape).flush()
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise DatasetError(
            f"cannot write a {np.prod(shape) / 1e9:.1f} GB cache into {folder} ({exc.strerror}): "
            "free space or make the folder writable"
        ) from None
    jobs = [
        (partial, shape, rows)
        for rows in _chunks(
            list(enumerate(index.items["path"].tolist())), _chunk_size(shape[0], workers)
        )
    ]
    failures: dict[str, str] = {}
    bar = progress_bar(total=len(image_ids), unit="img", desc=f"cache {size}px", enabled=progress)
    try:
        for chunk_failures, done in _run(jobs, workers):
            failures.update({image_ids[row]: reason for row, reason in chunk_failures})
            bar.update(done)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
    # Remove the old index first: a reader must never pair it with the new data.
    (folder / INDEX_FILE).unlink(missing_ok=True)
    os.replace(partial, folder / DATA_FILE)
    _write_index(folder, index, size, image_ids, failures)
    if failures:
        first_id, first_reason = next(iter(failures.items()))
        warnings.warn(
            f"{len(failures)} of {len(image_ids)} images could not be read and were skipped "
            f"(e.g. {first_id}: {first_reason}); listed in {folder / INDEX_FILE}",
            DatasetWarning,
            stacklevel=2,
        )
    return open_cache(folder)


def _write_index(
    folder: Path, index: DatasetIndex, size: int, image_ids: list[str], failures: dict[str, str]
) -> None:
    record = {
        "format": CACHE_FORMAT,
        "preprocessing_version": PREPROCESSING_VERSION,
        "preprocessing": "core.data.preprocess.model_view(load_radiograph(path).pixels, size)",
        "size": size,
        "fingerprint": index.fingerprint,
        "files": index.files_fingerprint,
        "source": index.source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_images": len(image_ids),
        "unreadable": failures,
        "image_ids": image_ids,
    }
    temporary = folder / f"{INDEX_FILE}.partial-{os.getpid()}"
    temporary.write_text(json.dumps(record))
    os.replace(temporary, folder / INDEX_FILE)


def _chunk_size(n_images: int, workers: int) -> int:
    # Small enough that every worker gets several tasks (no idle core at the end), large enough
    # that task overhead is negligible against ~10 ms of decoding per image.
    return max(1, min(_CHUNK, -(-n_images // (workers * 8))))


def _chunks(items: list, n: int) -> list[list]:
    return [items[start : start + n] for start in range(0, len(items), n)]


def _run(jobs: list[tuple], workers: int):
    """Yield (failures, n_done) per job, in a pool of `workers` processes (inline for one)."""
    if workers == 1 or len(jobs) == 1:
        try:
            for job in jobs:
                yield _decode_chunk(job)
        finally:
            _OPEN.clear()  # release the mapping before the file is renamed
        return
    # spawn, not fork: forking a process that runs torch or OpenCV thread pools can deadlock the
    # children (seen here under load). Workers import only numpy, OpenCV and the readers.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), initializer=_worker_init) as pool:
        yield from pool.imap_unordered(_decode_chunk, jobs)


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


_OPEN: dict[Path, np.memmap] = {}  # per worker process: the memmap being filled


def _decode_chunk(job: tuple) -> tuple[list[tuple[int, str]], int]:
    path, shape, rows = job
    array = _OPEN.get(path)
    if array is None:
        _OPEN.clear()
        array = _OPEN[path] = np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)
    failures = []
    for row, image_path in rows:
        try:
            array[row] = decode_model_view(image_path, shape[1])
        except (RadiographError, OSError) as exc:
            failures.append((row, str(exc)))
    return failures, len(rows)
