"""Torch datasets and loaders over a `DatasetIndex` split: uint8 images in, augmentation on the device.

Loaders move uint8 (1, S, S) images (4x less than float) and the float32 targets; conversion,
`RadiographAugment` and normalisation (`core.data.preprocess.to_model_input`) run on the model's
device. With an `ImageCache` a batch is one sorted fancy-index into the memory-mapped file
(`__getitems__`), so a single core serves thousands of images per second; without one, each image is
decoded from its file through the same preprocessing the cache used.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cxr_attention.core.data.cache import ImageCache, decode_model_view
from cxr_attention.core.errors import ConfigError

Sample = tuple[torch.Tensor, torch.Tensor, int]


class RadiographDataset(Dataset):
    """Items of `frame` (rows of `DatasetIndex.items`) as (image, target, index) samples.

    image: uint8 tensor (1, image_size, image_size), the model view before normalisation;
    target: float32 (L,) 0/1 in `labels` order; index: the row's position in `frame` (to join
    predictions back to metadata). Images come from `cache` when given (rows it lacks, and all rows
    without a cache, are decoded from their files).

    With `lungs` (a `core.lungs.cache.LungCache`), each view is first restricted by the lung
    `prior` (`core.data.lung_prior`); `lung_fields(rows)` gives the same films' lung fields in that
    frame, for the lung term of training.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        labels: Sequence[str],
        image_size: int,
        cache: ImageCache | None = None,
        lungs=None,
        prior: str = "none",
    ) -> None:
        missing = [label for label in labels if label not in frame.columns]
        if missing:
            raise ConfigError(f"the dataset has no column for labels {missing}")
        if cache is not None and cache.size != image_size:
            raise ConfigError(
                f"the image cache holds {cache.size} px images but the model needs {image_size} px: "
                f"build one with `cxr-attention cache DATA --size {image_size}`"
            )
        self.image_size = int(image_size)
        self.labels = tuple(labels)
        self.image_ids: list[str] = frame["image_id"].tolist()
        self.paths: list[str] = frame["path"].tolist()
        self.targets = np.ascontiguousarray(frame[list(labels)].to_numpy(dtype=np.float32))
        self.cache = cache
        self.cache_rows = cache.rows(self.image_ids) if cache is not None else None
        self.lungs = lungs
        self.prior = prior

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """A batch of samples at once: cached rows are read in one sorted pass over the file."""
        indices = np.asarray(indices, dtype=np.int64)
        images = self.read_images(indices)
        if self.lungs is not None and self.prior != "none":
            images = self.with_prior(images, indices)
        batch = torch.from_numpy(images).unsqueeze(1)
        targets = torch.from_numpy(self.targets[indices])
        return [(batch[k], targets[k], int(indices[k])) for k in range(len(indices))]

    def with_prior(self, images: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """uint8 (n, S, S): the views restricted by the lung prior."""
        from cxr_attention.core.data.lung_prior import prior_view

        fields = self.lungs.fields([self.image_ids[i] for i in indices], self.image_size)
        return np.stack(
            [prior_view(view, f, self.prior) for view, f in zip(images, fields, strict=True)]
        )

    def lung_fields(self, indices: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """uint8 (n, 1, S, S): the films' lung fields (0/255) in the frame the model sees."""
        from cxr_attention.core.data.lung_prior import prior_region

        indices = np.asarray(indices, dtype=np.int64)
        fields = self.lungs.fields([self.image_ids[i] for i in indices], self.image_size)
        carried = [prior_region(f, f, self.prior) for f in fields]
        return torch.from_numpy(np.stack(carried).astype(np.uint8) * 255).unsqueeze(1)

    def read_images(self, indices: np.ndarray) -> np.ndarray:
        """uint8 (n, S, S) model views of the items at `indices`."""
        size = self.image_size
        images = np.empty((len(indices), size, size), dtype=np.uint8)
        if self.cache_rows is not None:
            rows = self.cache_rows[indices]
            hit = rows >= 0
            if hit.any():
                images[hit] = self.cache.read(rows[hit])
            to_decode = np.flatnonzero(~hit)
        else:
            to_decode = range(len(indices))
        for k in to_decode:
            images[k] = decode_model_view(self.paths[indices[k]], size)
        return images


def default_workers() -> int:
    """Loader processes per training process: the cores of this rank, one left for the loop."""
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return min(8, max(0, (os.cpu_count() or 1) // max(1, ranks_here) - 1))


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    sampler: Sampler | None = None,
    num_workers: int | None = None,
    drop_last: bool = False,
    seed: int | None = None,
) -> DataLoader:
    """A DataLoader for `RadiographDataset`: persistent workers, pinned memory on CUDA.

    `shuffle` applies when no `sampler` is given; a sampler (e.g. `DistributedSampler(dataset,
    shuffle=True, seed=...)`, with `set_epoch` each epoch) decides the order itself. `seed` makes
    the shuffled order reproducible. `num_workers` defaults to `default_workers()`.
    """
    workers = default_workers() if num_workers is None else int(num_workers)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=generator,
        # Not fork: a worker forked while torch or OpenCV thread pools are busy can hang forever
        # (seen in the test suite). forkserver children start from a clean, single-threaded parent.
        multiprocessing_context=_start_method() if workers > 0 else None,
    )


def _start_method() -> str:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    # The server imports torch once, before it forks any worker (each worker would otherwise
    # import it anew: seconds of CPU per worker, per loader). An import runs no thread pool's
    # work, so the server stays the clean parent the comment above asks for. No effect once
    # the server runs.
    multiprocessing.set_forkserver_preload(["__main__", "torch"])
    return "forkserver"


def _worker_init(_worker_id: int) -> None:
    import cv2

    # Each worker is one core's worth of decoding; nested threads would only contend.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
