"""Data loading speed per core at 224 px: decoding PNGs each time vs the uint8 cache vs torchxrayvision.

Writes (or reuses) a ChestX-ray14-layout folder of 1024 x 1024 PNGs (the phantom generator when it is
available, else synthetic numpy films), then times one process with one thread (= one core):

  (a) RadiographDataset without a cache: every sample decoded from its PNG and resized;
  (b) RadiographDataset over the cache: one sorted fancy-index into the memmap per batch;
  (c) torchxrayvision's NIH_Dataset on the same files, when `torchxrayvision` is importable.

Training augmentation (RadiographAugment) runs on the model's device; on a GPU it costs the loader's
cores nothing. Here it is also timed on the CPU, alone and with (b), for CPU-only training.

    python benchmarks/bench_loading.py [--n 256] [--size 224] [--batch 64] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch

from core.data.augment import RadiographAugment
from core.data.cache import build_cache
from core.data.chestxray14 import DatasetWarning, open_dataset
from core.data.loader import RadiographDataset, make_loader

HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def synthetic_film(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uint8 film with the texture of a radiograph (smooth anatomy-like field, fine noise), so PNG
    decoding costs about what it costs on real 1024 px ChestX-ray14 files."""
    coarse = rng.normal(0.5, 0.15, (12, 12)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    y, x = np.mgrid[0:size, 0:size] / size
    lungs = np.exp(-(((x - 0.3) / 0.12) ** 2 + ((y - 0.5) / 0.25) ** 2))
    lungs += np.exp(-(((x - 0.7) / 0.12) ** 2 + ((y - 0.5) / 0.25) ** 2))
    image = 200 * field - 90 * lungs + rng.normal(0, 4, (size, size))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_numpy_folder(root: Path, n: int, size: int, seed: int = 0) -> None:
    """A minimal ChestX-ray14 folder (label file, images/) of `n` synthetic films."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for k in range(n):
        name = f"{k // 3 + 1:08d}_{k % 3:03d}.png"
        cv2.imwrite(str(root / "images" / name), synthetic_film(rng, size))
        findings = "No Finding" if k % 2 else "Effusion"
        lines.append(f"{name},{findings},{k % 3},{k // 3 + 1},50,M,PA,{size},{size},0.14,0.14")
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")


def benchmark_folder(root: Path, n: int, size: int = 1024, seed: int = 0) -> str:
    """Fill `root` unless it already holds a dataset; returns what generated it."""
    if any(root.glob("Data_Entry_2017*.csv")):
        return "existing folder"
    try:
        from core.data.phantom import generate_phantom
    except ImportError:
        write_numpy_folder(root, n, size, seed)
        return "synthetic numpy films"
    generate_phantom(root, n=n, size=size, seed=seed)
    return "phantom generator"


def samples_per_second(loader, augment: RadiographAugment | None, min_seconds: float) -> float:
    """Iterate epochs until `min_seconds` have passed; samples per second."""
    done, start = 0, time.perf_counter()
    while True:
        for images, _targets, _rows in loader:
            if augment is not None:
                augment(images.float().div_(255))
            done += len(images)
            if time.perf_counter() - start >= min_seconds:
                return done / (time.perf_counter() - start)


def augmentation_rate(size: int, batch: int, seconds: float) -> float:
    augment = RadiographAugment()
    x = torch.rand(batch, 1, size, size)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        augment(x)
        done += batch
    return done / (time.perf_counter() - start)


def torchxrayvision_rate(root: Path, size: int, seconds: float) -> float | None:
    try:
        import torchvision
        import torchxrayvision as xrv
    except ImportError:
        return None
    label_file = next(root.glob("Data_Entry_2017*.csv"))
    dataset = xrv.datasets.NIH_Dataset(
        imgpath=str(root / "images"),
        csvpath=str(label_file),
        bbox_list_path=None,
        views=["PA", "AP"],
        unique_patients=False,
        transform=torchvision.transforms.Compose(
            [xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(size)]
        ),
        data_aug=torchvision.transforms.RandomAffine(7, translate=(0.05, 0.05), scale=(0.92, 1.0)),
    )
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        dataset[done % len(dataset)]
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images in the generated folder")
    parser.add_argument("--size", type=int, default=224, help="model image size, px")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--data", type=Path, default=None, help="folder to use or fill")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="cxr-bench-") as scratch:
        root = args.data or Path(scratch) / "data"
        made_by = benchmark_folder(root, args.n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DatasetWarning)
            index = open_dataset(root)
        items = index.items
        cache = build_cache(index, args.size, progress=False)
        print(
            f"# {platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f}, 1 process, 1 thread; "
            f"{len(items)} 1024 px PNGs ({made_by}) -> {args.size} px, batch {args.batch}"
        )

        def loader(use_cache: bool):
            dataset = RadiographDataset(
                items, index.labels, args.size, cache if use_cache else None
            )
            return make_loader(dataset, args.batch, shuffle=True, num_workers=0, seed=0)

        png = samples_per_second(loader(False), RadiographAugment(), args.seconds)
        cached = samples_per_second(loader(True), None, args.seconds)
        augment_alone = augmentation_rate(args.size, args.batch, args.seconds)
        cached_aug = samples_per_second(loader(True), RadiographAugment(), args.seconds)
        xrv = torchxrayvision_rate(root, args.size, args.seconds)

    print(f"(a) decode PNG each time (+ augmentation)    {png:>10,.0f} samples/s per core")
    print(f"(b) cache, loader work (augment on device)   {cached:>10,.0f} samples/s per core")
    print(f"    cache + augmentation on this CPU         {cached_aug:>10,.0f} samples/s per core")
    print(
        f"    augmentation alone on this CPU           {augment_alone:>10,.0f} samples/s per core"
    )
    if xrv is None:
        print("(c) torchxrayvision NIH_Dataset               not installed")
    else:
        print(f"(c) torchxrayvision NIH_Dataset             {xrv:>10,.0f} samples/s per core")
    print(
        f"ratio cache / PNG decoding: {cached / png:,.0f}x (with CPU augmentation {cached_aug / png:,.0f}x)"
    )
    if xrv is not None:
        print(f"ratio cache / torchxrayvision: {cached / xrv:,.0f}x")
    print(
        f"goal: cache path over 5,000 samples/s per core: {'met' if cached > 5000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
