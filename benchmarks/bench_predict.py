"""`predict` throughput on a folder of 1024 px PNGs against decoding plus forward passes alone.

Issue 8 asks that scoring a folder not be slower than decoding its images plus the model's forward
passes. In one run this script measures, on the same files and model:

  decode   load_radiograph + model_view for every file, one after another (one thread);
  forward  the model alone on the already-made views, in batches, in torch.inference_mode;
  predict  core.inference.predict_files end to end (decoding threads ahead of the model), and the
           `cxr-attention predict --csv` command itself (table to /dev/null);

then prints images/s for each and the ratio predict / (decode + forward) in time (for the command,
less its one-off checkpoint load): at most 1 means the requirement holds; below 1 means decoding
overlaps the forward passes.

    python benchmarks/bench_predict.py [--n 1000] [--images DIR] [--backbone mobilenetv2_100]
        [--image-size 224] [--batch-size 32] [--workers N] [--device auto] [--repeats 3]

Without `--images` it writes N synthetic 1024 x 1024 8-bit PNGs (smooth anatomy-like shading plus
detector noise, about the size of a ChestX-ray14 PNG) into a temporary folder. The model has random
weights: throughput does not depend on what it learned.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import iter_radiograph_files, load_radiograph
from cxr_attention.core.inference import (
    ImageFailure,
    ScoringModel,
    default_workers,
    predict_files,
    predict_views,
    resolve_device,
)
from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.checkpoint import load_checkpoint, save_checkpoint
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig


def synthetic_pngs(folder: Path, n: int, size: int = 1024, seed: int = 0) -> list[Path]:
    """N PNGs of size x size: low-frequency shading plus noise, ~0.5 MB each like NIH films."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        coarse = rng.uniform(40, 220, (12, 12)).astype(np.float32)
        shading = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
        image = shading + rng.normal(0, 4, (size, size)).astype(np.float32)
        path = folder / f"{i:05d}.png"
        cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8))
        paths.append(path)
    return paths


def time_decode(paths: list[Path], size: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    views = [model_view(load_radiograph(p).pixels, size) for p in paths]
    return time.perf_counter() - start, np.stack(views)


def time_forward(model: ScoringModel, views: np.ndarray, batch_size: int, device) -> float:
    checkpoint = model.checkpoint
    predict_views(checkpoint.model, checkpoint, views[:batch_size], device)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for i in range(0, len(views), batch_size):
        predict_views(checkpoint.model, checkpoint, views[i : i + batch_size], device)
    _sync(device)
    return time.perf_counter() - start


def time_predict(model: ScoringModel, paths: list[Path], batch_size: int, workers, device) -> float:
    start = time.perf_counter()
    for result in predict_files(
        [model], paths, batch_size=batch_size, device=device, workers=workers
    ):
        if isinstance(result, ImageFailure):
            raise SystemExit(f"benchmark image failed: {result.reason}")
    _sync(device)
    return time.perf_counter() - start


def time_cli(ckpt: Path, folder: Path, args: argparse.Namespace, out: Path) -> float:
    from cxr_attention.train.cli import main

    argv = ["predict", str(ckpt), str(folder), "--csv", str(out), "--batch-size"]
    argv += [str(args.batch_size), "--device", args.device]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    if status != 0:
        raise SystemExit(f"cxr-attention predict exited with {status}")
    return time.perf_counter() - start


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="synthetic images (issue 8: 1000)")
    parser.add_argument("--images", type=Path, help="score this folder instead of synthetic PNGs")
    parser.add_argument("--backbone", default="mobilenetv2_100")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding threads (default: 1 on CPU, 4 on GPU)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (medians)")
    args = parser.parse_args()
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        tmp_path = Path(tmp)
        if args.images:
            folder = args.images
            paths = list(iter_radiograph_files([folder]))
        else:
            folder = tmp_path / "images"
            folder.mkdir()
            print(f"writing {args.n} synthetic 1024 px PNGs ...", flush=True)
            paths = synthetic_pngs(folder, args.n)
        config = ModelConfig(args.backbone, ALL14, attention=True, image_size=args.image_size)
        ckpt = save_checkpoint(tmp_path / "run" / "checkpoint.pt", AttentionClassifier(config))
        start = time.perf_counter()
        model = ScoringModel("bench", load_checkpoint(ckpt, device=device))
        load_s = time.perf_counter() - start
        megabytes = sum(p.stat().st_size for p in paths) / len(paths) / 1e6

        # Alternate the measurements and keep medians, so drift in machine load hits all alike.
        times: dict[str, list[float]] = {"decode": [], "forward": [], "predict": [], "cli": []}
        for _ in range(args.repeats):
            seconds, views = time_decode(paths, args.image_size)
            times["decode"].append(seconds)
            times["forward"].append(time_forward(model, views, args.batch_size, device))
            times["predict"].append(
                time_predict(model, paths, args.batch_size, args.workers, device)
            )
            times["cli"].append(time_cli(ckpt, folder, args, tmp_path / "scores.csv"))
        decode_s, forward_s, predict_s, cli_s = (
            statistics.median(times[k]) for k in ("decode", "forward", "predict", "cli")
        )

    n = len(paths)
    workers = args.workers if args.workers is not None else default_workers(device)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}"
    )
    print(
        f"# {n} images ({megabytes:.2f} MB PNG each), {args.backbone}+attention at "
        f"{args.image_size} px, batch {args.batch_size}, {workers} decoding threads, "
        f"median of {args.repeats} alternating rounds"
    )
    rows = [
        ("decode (load_radiograph + model_view)", decode_s),
        ("forward (model alone, inference_mode)", forward_s),
        ("decode + forward", decode_s + forward_s),
        ("predict_files (end to end)", predict_s),
        ("cxr-attention predict --csv", cli_s),
        ("  of which checkpoint load (once)", load_s),
    ]
    print(f"{'stage':<40}{'seconds':>9}{'ms/image':>10}{'images/s':>10}")
    for name, seconds in rows:
        print(f"{name:<40}{seconds:>9.2f}{1000 * seconds / n:>10.1f}{n / seconds:>10.1f}")
    # The command's one-off start (building the model) is amortised over a real folder.
    ratio = predict_s / (decode_s + forward_s)
    cli_ratio = (cli_s - load_s) / (decode_s + forward_s)
    verdict = "OK" if max(ratio, cli_ratio) <= 1.0 else "SLOWER than decode + forward"
    print(
        f"ratio predict / (decode + forward): library {ratio:.2f}, "
        f"command (less checkpoint load) {cli_ratio:.2f} "
        f"-> {verdict}"
    )


if __name__ == "__main__":
    main()
