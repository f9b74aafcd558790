"""Data-parallel training under torchrun: two CPU processes (gloo) train one run, rank 0 writes it."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from cxr_attention.core.data.loader import RadiographDataset
from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics.auc import macro_auc, micro_auc
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.runs import RunFolder
from cxr_attention.core.training.distributed import DistContext, detect_context, gather_predictions


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom") / "data"
    generate_phantom(root, n=160, size=32, seed=1, workers=1)
    return root


@pytest.mark.slow
def test_two_cpu_processes_under_torchrun_train_one_run(phantom, tmp_path):
    out = tmp_path / "run"
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "cxr_attention.train.cli", "fit", "--data", str(phantom), "--backbone", "test_efficientnet",
            "--attention", "--image-size", "32", "--epochs", "2", "--batch-size", "16",
            "--lr", "3e-3", "--val-fraction", "0.25", "--workers", "0", "--threads", "1",
            "--device", "cpu", "--no-progress", "--out", str(out),
        ],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    # One run folder, written once: no leftovers of concurrent writers.
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "history.csv",
        "last.pt",
        "tensorboard",
        "timeline",
    ]
    assert len(list((out / "tensorboard").iterdir())) == 1  # rank 0's event file alone
    run = RunFolder(out)
    assert run.config()["world_size"] == 2
    assert result.stderr.count("training test_efficientnet+attention") == 1  # rank 0 logs alone
    history = run.history()
    assert list(history["epoch"]) == [1, 2]

    # The validation AUC the two processes agreed on covers every validation image exactly once:
    # 35 images split over 2 ranks means one image is scored twice by the sampler's padding.
    checkpoint = load_checkpoint(run.checkpoint)
    index = open_dataset(phantom, val_fraction=0.25, seed=0)
    frame = index.split("val")
    assert len(frame) % 2 == 1
    images = RadiographDataset(frame, index.labels, 32)
    pixels = torch.from_numpy(images.read_images(np.arange(len(images)))).unsqueeze(1)
    with torch.no_grad():
        scores = torch.sigmoid(checkpoint.model(config_input(pixels, checkpoint.config))).numpy()
    best = history.loc[history["epoch"] == checkpoint.training["best_epoch"]].iloc[0]
    truth = index.targets(frame)
    assert macro_auc(truth, scores) == pytest.approx(best["val_macro_auc"], abs=1e-4)
    assert micro_auc(truth, scores) == pytest.approx(best["val_micro_auc"], abs=1e-4)


def test_gathered_predictions_drop_the_samplers_duplicates():
    # In a world of one the same rule applies: rows come back sorted by index, each once.
    indices = torch.tensor([4, 0, 2, 0])
    logits = torch.tensor([[4.0], [0.5], [2.0], [0.5]])
    targets = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    rows, got_logits, got_targets = gather_predictions(
        indices, logits, targets, DistContext(), torch.device("cpu")
    )
    assert rows.tolist() == [0, 2, 4]
    assert got_logits[:, 0].tolist() == [0.5, 2.0, 4.0]
    assert got_targets[:, 0].tolist() == [0.0, 1.0, 1.0]


def test_torchrun_environment_is_read_and_checked():
    assert detect_context({}) == DistContext(0, 1, 0)
    env = {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "1",
    }
    context = detect_context(env)
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    assert not context.is_main and context.is_distributed
    with pytest.raises(ConfigError, match="start the job with torchrun"):
        detect_context({"RANK": "0", "WORLD_SIZE": "2"})
