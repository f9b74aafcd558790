"""`sweep`: the grid trains, evaluates and compares; a restart skips finished runs.

Everything is tiny (a 48-image phantom at 64 px, 32 px models, two epochs of two batches): these
tests check the orchestration (folders, skipping, resuming, the report, the demo marker), not how
well the models learn, which the training tests check.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.train.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--image-size", "32", "--epochs", "2", "--max-train-batches", "2", "--batch-size", "8"]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phantom") / "set"
    generate_phantom(root, 48, 64, seed=3)
    return root


def mtimes(run: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.is_file()}


def interrupted_run(phantom: Path, out: Path) -> Path:
    """The attention variant as a killed sweep leaves it: 1 of 2 epochs, then evaluated by hand."""
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.training import FitConfig, fit
    from cxr_attention.train.commands.fit import load_preset
    from cxr_attention.train.commands.sweep import Variant, variant_options

    shared = load_preset("paper") | {"data": str(phantom), "image_size": 32, "epochs": 2}
    shared |= {"max_train_batches": 2, "batch_size": 8, "workers": 0, "progress": False}
    options = variant_options(shared, Variant("mobilenetv2_100", True), out)
    fit(FitConfig.from_dict(options | {"stop_after": 1}))
    run = Path(options["out"])
    evaluate_run(run, n_resamples=0, progress=False, num_workers=0)
    return run


@pytest.mark.slow
def test_sweep_trains_evaluates_compares_and_skips_on_restart(tmp_path, phantom, capsys):
    out = tmp_path / "sweep"
    interrupted = interrupted_run(phantom, out)
    assert len((interrupted / "history.csv").read_text().splitlines()) == 1 + 1
    argv = ["sweep", "--data", str(phantom), "--out", str(out), "--backbones", "mobilenetv2_100"]
    argv += [*TINY, "--n-resamples", "20", "--workers", "0", "--no-progress"]
    assert main(argv) == 0
    runs = [out / "mobilenetv2_100", out / "mobilenetv2_100+attention"]
    for run in runs:
        assert (run / "checkpoint.pt").is_file() and (run / "predictions.csv").is_file()
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["data"]["source"] == "phantom" and metrics["split"] == "test"
        fit = json.loads((run / "config.json").read_text())["fit"]
        # the paper preset, with the overrides given
        assert fit["labels"] == "paper13" and fit["attention_stages"] == [-2, -1]
        assert fit["image_size"] == 32 and fit["epochs"] == 2
        # both trained to the end: the interrupted one resumed at epoch 2
        assert len((run / "history.csv").read_text().splitlines()) == 1 + 2
    assert metrics["model"]["attention"] is True
    report = json.loads((out / "report" / "comparison.json").read_text())
    assert [p["backbone"] for p in report["pairs"]] == ["mobilenetv2_100"]
    assert "Synthetic data" in (out / "report" / "report.md").read_text()
    err = capsys.readouterr().err
    assert "1. train and evaluate mobilenetv2_100" in err and "[3/3]" in err
    assert "skipped" not in err

    # restart: both runs are done, nothing is retrained or re-evaluated
    before = {run: mtimes(run) for run in runs}
    assert main(argv) == 0
    assert err_count(capsys.readouterr().err, "already done, skipped") == 2
    assert {run: mtimes(run) for run in runs} == before

    # an interrupted run (trained, never evaluated) resumes: evaluated, not retrained
    (runs[1] / "metrics.json").unlink()
    checkpoint = (runs[1] / "checkpoint.pt").stat().st_mtime_ns
    assert main(argv) == 0
    assert err_count(capsys.readouterr().err, "already done, skipped") == 1
    assert (runs[1] / "metrics.json").is_file()
    assert (runs[1] / "checkpoint.pt").stat().st_mtime_ns == checkpoint

    # other options for the same folder: refused in one line, nothing touched
    assert main([*argv, "--epochs", "3"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "trained with other options" in lines[-1] and "epochs" in lines[-1]


def err_count(err: str, text: str) -> int:
    return sum(text in line for line in err.splitlines())


def test_sweep_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["sweep", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    argv = ["sweep", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*argv, "--preset", "no-such-preset"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "no-such-preset" in err
