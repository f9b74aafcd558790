"""Data loading speed per core at 224 px: decoding PNGs each time vs the uint8 cache vs torchxrayvision.

Writes (or reuses) a ChestX-ray14-layout folder of 1024 x 1024 PNGs (the phantom generator when it is
available, else synthetic numpy films), then times one process with one thread (= one core):

  (a) RadiographDataset without a cache: every sample decoded from its PNG and resized;
  (b) RadiographDataset over the cache: one sorted fancy-index into the memmap per batch;
  (c) torchxrayvision's NIH_Dataset on the same files, when `torchxrayvision` is importable.

Training augmentation (RadiographAugment) runs on the model's device; on a GPU it costs the loader's
cores nothing. Here it is also timed on the CPU, alone and with (b), for CPU-only training.

Each figure is given per wall-clock second and per CPU-second of this process; on a machine shared
with other jobs the wall figure drops with the load, the CPU one much less (it is the per-core rate).

    python benchmarks/bench_loading.py [--n 256] [--size 224] [--batch 64] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from cxr_attention.core.data.augment import RadiographAugment
from cxr_attention.core.data.cache import build_cache
from cxr_attention.core.data.index import DatasetWarning
from cxr_attention.core.data.loader import RadiographDataset, make_loader
from cxr_attention.core.data.sources import open_dataset

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
        from cxr_attention.core.data.phantom import generate_phantom
    except ImportError:
        write_numpy_folder(root, n, size, seed)
        return "synthetic numpy films"
    generate_phantom(root, n=n, size=size, seed=seed)
    return "phantom generator"


@dataclass(frozen=True)
class Rate:
    wall: float  # samples per wall-clock second
    cpu: float  # samples per CPU-second of this process: the per-core rate, whatever else runs


class Meter:
    """Wall-clock and process CPU time since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> float:
        return time.perf_counter() - self.wall

    def rate(self, done: int) -> Rate:
        cpu = max(time.process_time() - self.cpu, 1e-9)
        return Rate(done / max(self.seconds(), 1e-9), done / cpu)


def samples_per_second(loader, augment: RadiographAugment | None, min_seconds: float) -> Rate:
    """Iterate epochs until `min_seconds` have passed."""
    done, meter = 0, Meter()
    while True:
        for images, _targets, _rows in loader:
            if augment is not None:
                augment(images.float().div_(255))
            done += len(images)
            if meter.seconds() >= min_seconds:
                return meter.rate(done)


def augmentation_rate(size: int, batch: int, seconds: float) -> Rate:
    augment = RadiographAugment()
    x = torch.rand(batch, 1, size, size)
    done, meter = 0, Meter()
    while meter.seconds() < seconds:
        augment(x)
        done += batch
    return meter.rate(done)


def torchxrayvision_rate(root: Path, size: int, seconds: float) -> Rate | None:
    try:
        import torchvision
        import torchxrayvision as xrv
    except ImportError:
        return None
    label_file = next(root.glob("Data_Entry_2017*.csv"))
    # The folder's own box file when it has one (the phantom writes it), else the copy that ships
    # with torchxrayvision; None is not accepted (pandas is handed None).
    boxes = root / "BBox_List_2017.csv"
    box_option = {"bbox_list_path": str(boxes)} if boxes.is_file() else {}
    dataset = xrv.datasets.NIH_Dataset(
        imgpath=str(root / "images"),
        csvpath=str(label_file),
        views=["PA", "AP"],
        unique_patients=False,
        transform=torchvision.transforms.Compose(
            [xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(size)]
        ),
        # Samples are (1, H, W) numpy arrays: the augmentation of torchxrayvision's own training
        # script (scripts/train_model.py) goes through a float PIL image and back to a tensor.
        data_aug=torchvision.transforms.Compose(
            [
                xrv.datasets.ToPILImage(),
                torchvision.transforms.RandomAffine(7, translate=(0.05, 0.05), scale=(0.92, 1.0)),
                torchvision.transforms.ToTensor(),
            ]
        ),
        **box_option,
    )
    sample = dataset[0]["img"]
    if tuple(sample.shape) != (1, size, size):
        raise RuntimeError(
            f"torchxrayvision gave a {tuple(sample.shape)} sample, not (1, {size}, {size})"
        )
    done, meter = 0, Meter()
    while meter.seconds() < seconds:
        dataset[done % len(dataset)]
        done += 1
    return meter.rate(done)


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

    print(f"    load average at the end {os.getloadavg()[0]:.1f}")
    print(f"{'samples at ' + str(args.size) + ' px':<44}{'per s':>10} {'per CPU-s':>10}")
    rows = [
        ("(a) decode PNG each time (+ augmentation)", png),
        ("(b) cache, loader work (augment on device)", cached),
        ("    cache + augmentation on this CPU", cached_aug),
        ("    augmentation alone on this CPU", augment_alone),
    ]
    if xrv is not None:
        rows.append(("(c) torchxrayvision NIH_Dataset (+ its aug.)", xrv))
    for label, rate in rows:
        print(f"{label:<44}{rate.wall:>10,.0f} {rate.cpu:>10,.0f}")
    if xrv is None:
        print("(c) torchxrayvision NIH_Dataset: not installed (pip install -e '.[bench]')")
    print(
        f"ratio cache / PNG decoding (per CPU-s): {cached.cpu / png.cpu:,.0f}x "
        f"(with CPU augmentation {cached_aug.cpu / png.cpu:,.0f}x)"
    )
    if xrv is not None:
        print(
            f"ratio cache / torchxrayvision (per CPU-s): {cached.cpu / xrv.cpu:,.0f}x "
            f"(with CPU augmentation on both {cached_aug.cpu / xrv.cpu:,.0f}x)"
        )
    met = "met" if cached.cpu > 5000 else "NOT met"
    print(f"goal: cache path over 5,000 samples per CPU-second: {met}")


if __name__ == "__main__":
    main()
