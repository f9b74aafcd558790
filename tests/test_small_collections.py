"""Small collections: `fit` says when a run ends still improving, and counts optimiser steps.

The "still improving" rule is checked on validation curves measured on real films
(docs/your-own-films.md) and on a real short run; `--min-steps` on a real run on a small phantom.
"""

from __future__ import annotations

import contextlib
import io
import math

import pandas as pd
import pytest

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.runs import RunFolder
from cxr_attention.core.training import FitConfig
from cxr_attention.core.training.advice import still_improving_line
from cxr_attention.core.training.data import prepare_data
from cxr_attention.core.training.distributed import detect_context
from cxr_attention.core.training.state import load_train_state, save_train_state
from cxr_attention.core.training.steps import MIN_STEPS, passes_per_epoch
from cxr_attention.train.cli import main

TINY = "test_efficientnet"
QUIET = ["--workers", "0", "--threads", "1", "--no-progress"]

# Validation macro AUC per epoch of MobileNetV2 at 96 px, 8 epochs, from scratch
# (docs/your-own-films.md): 506 tuberculosis films, still climbing at the end ...
TUBERCULOSIS = [0.466, 0.623, 0.672, 0.751, 0.749, 0.793, 0.794, 0.804]
# ... and 215 paediatric films, flat at its best for the last three epochs.
PNEUMONIA_300 = [0.480, 0.380, 0.485, 0.805, 0.910, 0.940, 0.940, 0.940]


def test_still_improving_is_said_of_a_climbing_curve_and_only_of_one():
    assert still_improving_line(TUBERCULOSIS) == (
        "still improving at the last epoch: try --epochs 16 (validation macro AUC 0.793 by "
        "epoch 6, 0.804 at epoch 8)"
    )
    assert still_improving_line(PNEUMONIA_300) is None  # flat at its best
    assert still_improving_line([0.90, 0.95, 0.94, 0.93]) is None  # peaked earlier
    assert still_improving_line([0.990, 0.991, 0.9915, 0.992]) is None  # learnt: a rounding gain
    assert still_improving_line([0.62, 0.71, 0.79]) is not None  # the 3-epoch run
    assert still_improving_line([0.7]) is None  # one epoch: no trend to read
    assert still_improving_line([0.6, float("nan"), 0.8]) is None


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom") / "data"
    generate_phantom(root, n=200, size=48, seed=3, workers=1)
    return root


def _fit(phantom, out, *extra: str, size: int = 48) -> tuple[RunFolder, str]:
    argv = ["fit", "--data", str(phantom), "--backbone", TINY, "--image-size", str(size)]
    argv += ["--batch-size", "16", "--lr", "1e-2", "--val-fraction", "0.25"]
    argv += ["--out", str(out), *extra, *QUIET]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 0
    return RunFolder(out), err.getvalue()


def test_a_run_that_ends_still_improving_says_so_in_one_line(phantom, tmp_path):
    run, err = _fit(phantom, tmp_path / "short", "--epochs", "3")
    aucs = run.history()["val_macro_auc"].tolist()
    said = [line for line in err.splitlines() if line.startswith("still improving")]
    assert aucs[-1] - max(aucs[:-1]) > 0.01, aucs  # this short run is still climbing ...
    assert said == [still_improving_line(aucs)]  # ... and says so, once
    assert said[0].startswith("still improving at the last epoch: try --epochs 6 (")
    # A run paused before its last epoch (--stop-after) has not ended: it says nothing.
    paused, err = _fit(phantom, tmp_path / "paused", "--epochs", "3", "--stop-after", "2")
    assert len(paused.history()) == 2 and "still improving" not in err


def test_min_steps_makes_each_epoch_go_over_a_small_collection_several_times(phantom, tmp_path):
    assert passes_per_epoch(0, 8, 22, 1) == 1  # off
    assert passes_per_epoch(400, 8, 22, 1) == 3  # 176 steps in 8 passes: 3 passes an epoch
    assert passes_per_epoch(400, 8, 60, 1) == 1  # 480 steps already
    assert passes_per_epoch(400, 8, 22, 2) == 5  # 11 optimiser steps a pass with accumulation
    # Steps are counted, not learnt: 32 px films are enough (under half the pixels of 48).
    plain, _ = _fit(phantom, tmp_path / "plain", "--epochs", "2", size=32)  # one pass an epoch
    steps = load_train_state(plain.last_checkpoint)["schedule"]["steps_done"]
    assert steps == 2 * (plain.config()["data"]["split"]["sizes"]["train"] // 16)
    stretch = ["--epochs", "2", "--min-steps", str(3 * steps)]
    run, err = _fit(phantom, tmp_path / "stretched", *stretch, size=32)
    assert len(run.history()) == 2  # still two epochs: two validations, two rows
    assert load_train_state(run.last_checkpoint)["schedule"]["steps_done"] == 3 * steps
    assert "each epoch goes 3 times over the " in err


def test_a_collection_people_hold_gets_the_minimum_by_default(phantom, tmp_path):
    """The same films listed in a CSV (a collection a user holds) go over several times an epoch
    unless told otherwise; a phantom does not."""
    entry = pd.read_csv(next(phantom.glob("Data_Entry*.csv")))
    table = pd.DataFrame(
        {
            "path": "images/" + entry["Image Index"],
            "Abnormal": entry["Finding Labels"] != "No Finding",
        }
    ).astype({"Abnormal": int})
    table.to_csv(phantom / "mine.csv", index=False)
    options = dict(out=str(tmp_path / "run"), backbone=TINY, epochs=2, batch_size=16, workers=0)
    context = detect_context()
    as_phantom = prepare_data(FitConfig(data=str(phantom), **options), context)
    as_table = prepare_data(FitConfig(data=str(phantom / "mine.csv"), **options), context)
    assert as_phantom.passes == 1
    per_pass = len(as_table.train_loader)
    assert as_table.passes == math.ceil(MIN_STEPS / (2 * per_pass)) > 1
    assert as_table.train_batches == as_table.passes * per_pass
    told = prepare_data(FitConfig(data=str(phantom / "mine.csv"), min_steps=0, **options), context)
    assert told.passes == 1


def test_a_finished_run_from_before_min_steps_resumes_as_done(phantom, tmp_path, capsys):
    """A run saved before --min-steps existed (no min_steps in last.pt: one pass an epoch) that
    has finished is done whatever --min-steps says now, as `demo --retrain` finds a zoo's finished
    runs; an unfinished one would go on under another rule, so it is refused in one line."""
    runs = {}
    for name, extra in (
        ("done", ["--epochs", "1"]),
        ("paused", ["--epochs", "2", "--stop-after", "1"]),
    ):
        runs[name], _ = _fit(phantom, tmp_path / name, *extra, size=32)
        state = load_train_state(runs[name].last_checkpoint)
        del state["fit_config"]["min_steps"]  # as a run from before the option saved it
        save_train_state(runs[name].last_checkpoint, state)
    run, err = _fit(phantom, tmp_path / "done", "--epochs", "1", "--resume", size=32)
    assert "already complete (1 epochs): nothing to do" in err and len(run.history()) == 1
    argv = ["fit", "--data", str(phantom), "--backbone", TINY, "--image-size", "32"]
    argv += ["--batch-size", "16", "--lr", "1e-2", "--val-fraction", "0.25", "--epochs", "2"]
    assert main([*argv, "--out", str(tmp_path / "paused"), "--resume", *QUIET]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "trained with other options (min_steps: 0 -> None)" in err
    assert len(runs["paused"].history()) == 1
