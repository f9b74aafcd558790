"""On a CUDA GPU: the plan `fit` takes there by default, and a CPU-made checkpoint scoring on it.

Marked `cuda`: skipped without a GPU (tests/conftest.py); a GPU session runs them with
`pytest -m cuda -n 0`. The CPU suite covers the same numerics with `--amp bf16`
(tests/test_mixed_precision.py); these catch what only a device can: a CPU tensor meeting a CUDA
batch, float16 with its loss scaler, cuDNN's channels-last kernels.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.evaluation import evaluate_run
from cxr_attention.core.inference import score_views
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.training import FitConfig, fit

pytestmark = pytest.mark.cuda

SIZE = 64


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cuda") / "phantom"
    generate_phantom(root, n=240, size=SIZE, seed=0, workers=1)
    return root


def quick(data: Path, out: Path, **changes) -> FitConfig:
    options = dict(
        data=str(data),
        out=str(out),
        backbone="test_efficientnet",
        attention=True,
        labels="paper13",
        image_size=SIZE,
        epochs=2,
        batch_size=32,
        lr=5e-3,
        val_fraction=0.25,
        workers=0,
        progress=False,
        tensorboard=False,
    )
    return FitConfig(**(options | changes))


@pytest.mark.parametrize("amp", ["auto", "fp16"])
def test_short_fit_on_cuda_with_amp_and_channels_last(phantom, tmp_path, amp):
    run = fit(quick(phantom, tmp_path / "run", device="cuda", amp=amp))
    config = json.loads((run.path / "config.json").read_text())
    expected = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if amp == "auto" else "fp16"
    assert (config["amp"], config["channels_last"]) == (expected, True)
    assert config["device"].startswith("cuda")
    history = run.history()
    assert len(history) == 2 and all(math.isfinite(v) for v in history["train_loss"])
    checkpoint = load_checkpoint(run.checkpoint)  # a GPU-trained checkpoint loads on the CPU
    assert checkpoint.ood is not None and checkpoint.calibrated
    assert all(t.device.type == "cpu" for t in checkpoint.model.state_dict().values())
    metrics = evaluate_run(run.path, n_resamples=0, progress=False, num_workers=0, device="cpu")
    assert math.isfinite(metrics["macro_auc"])


def test_cpu_checkpoint_meets_a_cuda_batch(phantom, tmp_path):
    """A run trained on the CPU scores on the GPU as on the CPU: weights, OOD description and
    temperatures follow the batch to the device."""
    run = fit(quick(phantom, tmp_path / "run", device="cpu", amp="off", epochs=1))
    on_cpu = evaluate_run(run.path, n_resamples=0, progress=False, num_workers=0, device="cpu")
    on_gpu = evaluate_run(run.path, n_resamples=0, progress=False, num_workers=0, device="cuda")
    assert on_gpu["macro_auc"] == pytest.approx(on_cpu["macro_auc"], abs=1e-3)
    views = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE), dtype=np.uint8)
    cpu = score_views(load_checkpoint(run.checkpoint), views, "cpu")
    gpu = score_views(load_checkpoint(run.checkpoint, device="cuda"), views, "cuda")
    np.testing.assert_allclose(gpu.probabilities, cpu.probabilities, atol=1e-4)
    for a, b in zip(gpu.ood, cpu.ood, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-3, abs=1e-3)
