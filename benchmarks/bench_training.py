"""Training throughput (images/s) per backbone, with and without attention, as `fit` trains.

Two figures per variant, measured in the same run:

- *fit*: images/s of the training epochs of a real `fit` on a cached phantom (the product's path:
  memory-mapped uint8 cache -> loader -> on-device augmentation -> AMP and channels_last on CUDA),
  read from the run's history.csv;
- *compute*: the same optimiser steps on a batch already on the device (no loader at all).

fit / compute near 1.0 means the loader is never the bottleneck. On CUDA the script also samples
GPU utilisation while `fit` runs (needs `nvidia-smi`).

    python benchmarks/bench_training.py [--backbones ...] [--image-size 224] [--batch-size 32]
        [--images 512] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import torch

from cxr_attention.core.data.cache import build_cache
from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.models.registry import PAPER_BACKBONES
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.device import plan_device


def compute_rate(backbone: str, attention: bool, size: int, batch: int, steps: int) -> float:
    """Optimiser steps per second x batch, on a batch that never leaves the device."""
    plan = plan_device("auto")
    config = ModelConfig(backbone, ALL14, attention=attention, image_size=size)
    model = AttentionClassifier(config).to(plan.device).train()
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8, device=plan.device)
    targets = torch.randint(0, 2, (batch, len(ALL14)), device=plan.device).float()
    x = plan.images(config_input(images, config, plan.device))
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        with plan.autocast():
            logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if plan.device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 2:  # the first steps pay for autotuning and allocation
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


class GpuSampler:
    """Samples `nvidia-smi` utilisation every 0.5 s in a thread."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True, text=True,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))

    def __enter__(self) -> GpuSampler:
        if torch.cuda.is_available():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def summary(self) -> str:
        return f"{statistics.median(self.samples):.0f}%" if self.samples else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(PAPER_BACKBONES))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=512, help="phantom training set size")
    parser.add_argument("--steps", type=int, default=10, help="timed compute-only steps")
    parser.add_argument("--epochs", type=int, default=2, help="fit epochs (the first warms up)")
    parser.add_argument("--workers", type=int, default=None, help="loader processes for fit")
    args = parser.parse_args()

    device = plan_device("auto")
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"# {name}, amp={device.amp}, channels_last={device.channels_last}, "
        f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
        f"{args.image_size} px, batch {args.batch_size}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "phantom"
        generate_phantom(data, args.images, size=args.image_size, seed=0)
        build_cache(open_dataset(data), args.image_size, progress=False)
        print(
            f"{'backbone':<18}{'attention':>10}{'fit img/s':>11}{'compute img/s':>15}{'ratio':>7}{'GPU util':>9}"
        )
        for backbone in args.backbones:
            for attention in (False, True):
                config = FitConfig(
                    data=str(data), out=str(Path(tmp) / f"{backbone}-{attention}"),
                    backbone=backbone, attention=attention, image_size=args.image_size,
                    batch_size=args.batch_size, epochs=args.epochs, patience=None,
                    workers=args.workers, progress=False,
                )  # fmt: skip
                with GpuSampler() as gpu:
                    run = fit(config)
                history = pd.read_csv(run.path / "history.csv")
                fit_rate = float(history["images_per_s"].iloc[-1])  # the warm epoch
                rate = compute_rate(
                    backbone, attention, args.image_size, args.batch_size, args.steps
                )
                print(
                    f"{backbone:<18}{'yes' if attention else 'no':>10}{fit_rate:>11.1f}"
                    f"{rate:>15.1f}{fit_rate / rate:>7.2f}{gpu.summary():>9}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
