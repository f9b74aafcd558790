"""`--resume` continues exactly where a run stopped: same weights as a run never interrupted."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.errors import ConfigError
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.state import load_train_state
from cxr_attention.train.cli import main

TINY = "test_efficientnet"
SIZE = 32  # px: these tests compare runs with each other, not how well a model learns


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom") / "data"
    generate_phantom(root, n=128, size=SIZE, seed=1, workers=1)
    return root


def config(data, out, **changes) -> FitConfig:
    options = dict(
        data=str(data),
        out=str(out),
        backbone=TINY,
        attention=True,
        image_size=SIZE,
        epochs=3,
        batch_size=16,
        accumulate=2,  # resume must also restore a schedule counted in optimiser steps
        lr=3e-3,
        warmup_epochs=0.5,
        drop_rate=0.2,  # dropout and augmentation draw random numbers: RNG state must resume too
        val_fraction=0.25,
        workers=1,  # a persistent loader worker must not shift the random stream on resume
        threads=1,
        progress=False,
    )
    return FitConfig(**(options | changes))


def weights(run_folder) -> dict[str, torch.Tensor]:
    return load_train_state(run_folder.last_checkpoint)["model"]


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted_run(phantom, tmp_path):
    straight = fit(config(phantom, tmp_path / "straight"))

    stopped = fit(config(phantom, tmp_path / "resumed", stop_after=1))
    state = load_train_state(stopped.last_checkpoint)
    assert state["epoch"] == 1 and len(stopped.history()) == 1
    # A kill after history.csv was written but before last.pt was saved repeats that epoch:
    # the row it wrote must not be duplicated.
    row = stopped.history().iloc[[0]].assign(epoch=2)
    row.to_csv(stopped.path / "history.csv", mode="a", header=False, index=False)

    resumed = fit(config(phantom, tmp_path / "resumed", resume=True))

    expected, actual = weights(straight), weights(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    a = load_train_state(straight.last_checkpoint)
    b = load_train_state(resumed.last_checkpoint)
    assert a["schedule"] == b["schedule"] and a["epoch"] == b["epoch"] == 3
    assert a["best_epoch"] == b["best_epoch"]
    numbers = ["train_loss", "val_loss", "val_macro_auc", "val_micro_auc", "lr"]
    pd.testing.assert_frame_equal(straight.history()[numbers], resumed.history()[numbers])
    assert len(resumed.config()["resumed"]) == 1


@pytest.mark.slow
def test_resume_from_the_command_line_needs_only_the_run_folder(phantom, tmp_path, capsys):
    out = tmp_path / "run"
    # No loader worker here (a process that imports torch, twice a run): the test above has them.
    fit(config(phantom, out, epochs=2, stop_after=1, accumulate=1, drop_rate=0.0, workers=0))
    # The saved config.json supplies every option; nothing else needs repeating.
    assert main(["fit", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]
    assert "resuming after epoch 1" in capsys.readouterr().err
    # A finished run resumed again does nothing (a restarted sweep skips it).
    before = (out / "last.pt").stat().st_mtime_ns
    assert main(["fit", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert (out / "last.pt").stat().st_mtime_ns == before
    assert "already complete" in capsys.readouterr().err


def test_resume_with_other_options_is_refused(phantom, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    saved = config(phantom, out)
    torch.save(
        {"format": "cxr-attention-train-state", "format_version": 1, "fit_config": saved.to_dict()},
        out / "last.pt",
    )
    with pytest.raises(ConfigError, match=r"other options \(lr: 0.003 -> 0.01\)"):
        fit(config(phantom, out, lr=1e-2, resume=True, workers=2))
