"""What the out-of-distribution score and calibration cost on top of a forward pass.

Issue 13 asks that the OOD warning cost under 5% of a forward pass. For each backbone this script
builds a model (random weights: cost does not depend on what it learned), fits an OOD description
on pooled features of synthetic films (`core.trust.ood.fit_ood`, the same code `fit` runs), then
times on the same batches, interleaved:

  forward  `core.inference.predict_views`: normalise the uint8 views, `model(x)`, calibrated
           sigmoid; what a checkpoint without an OOD description costs;
  scored   `core.inference.score_views`: the same with every stage's pooled features kept
           (`pooled_forward`) and the OOD score;

and prints milliseconds per image for both, the overhead (scored / forward - 1), the OOD score
alone on features already pooled, and the size of the OOD description in the checkpoint.

    python benchmarks/bench_trust.py [--backbones mobilenetv2_100,efficientnet_b0,resnet101]
        [--image-size 224] [--batch-size 16] [--repeats 7] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.inference import predict_views, score_views
from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.checkpoint import Checkpoint
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.trust.features import pooled_forward
from cxr_attention.core.trust.ood import fit_ood
from cxr_attention.core.trust.temperature import TemperatureScaling


def synthetic_views(n: int, size: int, seed: int) -> np.ndarray:
    """uint8 (n, size, size): smooth shading plus noise, a stand-in for films."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(30, 220, (n, 1, 8, 8)).astype(np.float32))
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")[:, 0]
    noisy = smooth.numpy() + rng.normal(0, 8, (n, size, size))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def build(backbone: str, size: int, device: torch.device) -> Checkpoint:
    """A checkpoint-like object with an OOD description and temperatures, as `fit` leaves one."""
    config = ModelConfig(backbone, ALL14, attention=True, image_size=size)
    model = AttentionClassifier(config).eval().to(device)
    features: dict[str, list[np.ndarray]] = {}
    views = synthetic_views(96, size, seed=0)
    with torch.inference_mode():
        for i in range(0, len(views), 16):
            x = config_input(torch.from_numpy(views[i : i + 16]), config, device)
            for name, value in pooled_forward(model, x).features.items():
                features.setdefault(name, []).append(value.cpu().numpy())
    stacked = {name: np.concatenate(parts) for name, parts in features.items()}
    train = {name: value[:64] for name, value in stacked.items()}
    val = {name: value[64:] for name, value in stacked.items()}
    calibration = TemperatureScaling(ALL14, tuple(1.0 + 0.1 * k for k in range(len(ALL14))))
    return Checkpoint(model, config, {}, "", "", ood=fit_ood(train, val), calibration=calibration)


def timed(fn, sync) -> float:
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="mobilenetv2_100,efficientnet_b0,resnet101")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(
        f"torch {torch.__version__}, {platform.machine()}, device {device}, "
        f"{torch.get_num_threads()} threads, {args.image_size} px, batch {args.batch_size}"
    )
    print(
        f"{'backbone':<18} {'forward ms/img':>14} {'scored ms/img':>14} {'overhead':>9} "
        f"{'OOD alone ms/img':>17} {'OOD MB':>7}"
    )
    for backbone in args.backbones.split(","):
        checkpoint = build(backbone, args.image_size, device)
        views = synthetic_views(args.batch_size, args.image_size, seed=1)
        x = config_input(torch.from_numpy(views), checkpoint.config, device)
        with torch.inference_mode():
            features = pooled_forward(checkpoint.model, x).features

        def forward(views=views, checkpoint=checkpoint) -> None:
            predict_views(checkpoint.model, checkpoint, views, device)

        def scored(views=views, checkpoint=checkpoint) -> None:
            score_views(checkpoint, views, device)

        def ood_alone(features=features, checkpoint=checkpoint) -> None:
            with torch.inference_mode():
                checkpoint.ood.score(features)

        for fn in (forward, scored):  # warm-up
            fn()
        plain, full = [], []
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            plain.append(timed(forward, sync))
            full.append(timed(scored, sync))
        alone = statistics.median(timed(ood_alone, sync) for _ in range(args.repeats))
        f, s = statistics.median(plain), statistics.median(full)
        n = args.batch_size
        size_mb = (
            sum(
                t.numel() * 4
                for layer in checkpoint.ood.layers
                for t in (layer.mean, layer.basis, layer.inverse_variance)
            )
            / 2**20
        )
        print(
            f"{backbone:<18} {1000 * f / n:>14.2f} {1000 * s / n:>14.2f} {100 * (s / f - 1):>8.1f}% "
            f"{1000 * alone / n:>17.3f} {size_mb:>7.2f}"
        )
    print(
        "forward = predict_views (normalise, forward, calibrated sigmoid); scored = score_views "
        "(the same with pooled stage features and the OOD score)"
    )


if __name__ == "__main__":
    main()
