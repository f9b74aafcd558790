"""Training throughput (images/s) with and without the spatial gate, as `fit` trains, beside the
loader's own ceiling.

Defaults are the GPU target's setting: ResNet101 at 224 px, batch 128, AMP and channels_last (on
CUDA), augmentation on the device, batches from the uint8 cache. Per variant, measured in one run:

- *fit*: images/s of the training epochs of a real `fit` on a cached phantom (the product's path:
  memory-mapped uint8 cache -> loader -> on-device augmentation -> autocast), from history.csv;
- *compute*: the same optimiser steps on a batch already on the device (no loader at all);

and once per run the *loader ceiling*: images/s the same training loader delivers to the device
with no model (and with the on-device augmentation). fit / compute near 1.0, and a ceiling well
above fit, mean the loader is never the bottleneck. The gate's cost is the time per image with the
gate over the time without it, less one. On CUDA the script also samples GPU utilisation while
`fit` runs (needs `nvidia-smi`). On a machine without CUDA it runs the same path on the CPU and says
so: those are CPU figures (`--amp bf16` runs the GPU's numerics there, not its speed).

    python benchmarks/bench_training.py [--backbones resnet101] [--size 224] [--batch 128]
        [--images N] [--steps 10] [--epochs 2] [--amp auto|bf16|fp16|off] [--device auto]
    python benchmarks/bench_training.py --backbones mobilenetv2_100 --size 64 --batch 16 \
        --images 96 --steps 3 --amp bf16          # a quick check on a CPU
"""

from __future__ import annotations

import argparse
import math
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
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.data import build_augment, prepare_data
from cxr_attention.core.training.device import AMP_MODES, DevicePlan, plan_device
from cxr_attention.core.training.distributed import detect_context


def compute_rate(
    plan: DevicePlan, backbone: str, attention: bool, size: int, batch: int, steps: int
) -> float:
    """Optimiser steps per second x batch, on a batch that never leaves the device."""
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
        synchronize(plan.device)
        if step >= 2:  # the first steps pay for autotuning and allocation
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def loader_ceiling(config: FitConfig, plan: DevicePlan, passes: int = 2) -> tuple[float, float]:
    """Images/s of `fit`'s own training loader delivered to the device with no model: plain, and
    with the on-device augmentation. The best of `passes` epochs each (the first starts workers
    and warms the page cache)."""
    data = prepare_data(config, detect_context())
    augment = build_augment(config, plan.device)
    rates = {False: 0.0, True: 0.0}
    for augmented in (False, True):
        for epoch in range(passes):
            data.train_sampler.set_epoch(epoch)
            seen, start = 0, time.perf_counter()
            for images, _targets, _rows in data.train_loader:
                x = images.to(plan.device, non_blocking=True).float().div_(255.0)
                if augmented and augment is not None:
                    x = augment(x)
                seen += x.shape[0]
            synchronize(plan.device)
            rates[augmented] = max(rates[augmented], seen / (time.perf_counter() - start))
    return rates[False], rates[True]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    parser.add_argument("--backbones", nargs="+", default=["resnet101"])
    parser.add_argument("--image-size", "--size", type=int, default=224)
    parser.add_argument("--batch-size", "--batch", type=int, default=128)
    parser.add_argument(
        "--images", type=int, default=None, help="phantom training set size (default 16 batches)"
    )
    parser.add_argument("--steps", type=int, default=10, help="timed compute-only steps")
    parser.add_argument("--epochs", type=int, default=2, help="fit epochs (the first warms up)")
    parser.add_argument("--workers", type=int, default=None, help="loader processes for fit")
    parser.add_argument("--amp", choices=AMP_MODES, default="auto", help="as `fit --amp`")
    parser.add_argument("--device", default="auto", help="as `fit --device`")
    args = parser.parse_args()
    # The phantom's split keeps about 55 % of the films for training.
    images = args.images or math.ceil(16 * args.batch_size / 0.55)

    plan = plan_device(args.device, args.amp)
    if plan.device.type == "cuda":
        name = torch.cuda.get_device_name(plan.device)
    else:
        name = f"{plan.device.type.upper()} ONLY: CPU figures, not what a GPU does"
    print(
        f"# {name}, amp={plan.amp}, channels_last={plan.channels_last}, "
        f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
        f"{args.image_size} px, batch {args.batch_size}, {images} phantom films"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "phantom"
        generate_phantom(data, images, size=args.image_size, seed=0)
        build_cache(open_dataset(data), args.image_size, progress=False)

        def config(backbone: str, attention: bool) -> FitConfig:
            return FitConfig(
                data=str(data), out=str(Path(tmp) / f"{backbone}-{attention}"),
                backbone=backbone, attention=attention, image_size=args.image_size,
                batch_size=args.batch_size, epochs=args.epochs, patience=None,
                workers=args.workers, progress=False, amp=args.amp, device=args.device,
                tensorboard=False,
            )  # fmt: skip

        plain, augmented = loader_ceiling(config(args.backbones[0], False), plan)
        print(
            f"loader ceiling (uint8 cache -> device, no model): {plain:.0f} img/s; "
            f"with the on-device augmentation: {augmented:.0f} img/s"
        )
        print(
            f"{'backbone':<18}{'attention':>10}{'fit img/s':>11}{'compute img/s':>15}"
            f"{'fit/compute':>13}{'ceiling/fit':>13}{'GPU util':>10}"
        )
        for backbone in args.backbones:
            rates = {}
            for attention in (False, True):
                with GpuSampler() as gpu:
                    run = fit(config(backbone, attention))
                history = pd.read_csv(run.path / "history.csv")
                fit_rate = float(history["images_per_s"].iloc[-1])  # the warm epoch
                rate = compute_rate(
                    plan, backbone, attention, args.image_size, args.batch_size, args.steps
                )
                rates[attention] = (fit_rate, rate)
                print(
                    f"{backbone:<18}{'yes' if attention else 'no':>10}{fit_rate:>11.1f}"
                    f"{rate:>15.1f}{fit_rate / rate:>13.2f}{augmented / fit_rate:>13.1f}"
                    f"{gpu.summary():>10}",
                    flush=True,
                )
            (fit_off, compute_off), (fit_on, compute_on) = rates[False], rates[True]
            print(
                f"gate cost, {backbone}: {fit_off / fit_on - 1:+.1%} in fit, "
                f"{compute_off / compute_on - 1:+.1%} compute-only "
                "(time per image with the gate / without, less one; target <= +10 %)",
                flush=True,
            )


if __name__ == "__main__":
    main()
