"""`fit --pretrained RUN`: a model the project made, whatever its labels, starts a run on other films.

A tiny network (timm's 0.1 M-parameter `test_efficientnet`) learns the phantom's 13 findings; its
run folder then starts a run on other films with another label (any finding against none, in a CSV
as a user writes one). The run takes the backbone, the gates and the input contract, gets a fresh
head, learns, and records where it started; mismatched starts are refused in one line before any
film is read. The shipped real-film models start runs too.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.errors import PretrainedWeightsError
from cxr_attention.core.labels import PAPER13
from cxr_attention.core.models.checkpoint import (
    load_checkpoint,
    read_checkpoint_data,
    save_checkpoint,
)
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.models.compact import compact_checkpoint, expand_weights
from cxr_attention.core.models.transfer import BACKBONE, GATE, HEAD, model_parts
from cxr_attention.core.runs import RunFolder
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.config import LR_FROM_PROJECT_MODEL
from cxr_attention.core.training.model import build_model, check_pretrained
from cxr_attention.train.cli import main
from tests.shared_runs import phantom_copy

TINY = "test_efficientnet"
ZOO = Path(__file__).resolve().parents[1] / "assets" / "zoo-pneumonia"
QUIET = ["--workers", "0", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory) -> Path:
    """A run that learnt the phantom's 13 findings, with gates after the last two stages."""
    # the session's 400-film phantom at 64 px (tests/shared_runs.py), copied
    root = phantom_copy(tmp_path_factory, tmp_path_factory.mktemp("phantom") / "data", 400, 64, 0)
    out = tmp_path_factory.mktemp("runs") / "source"
    fit(
        FitConfig(
            data=str(root),
            out=str(out),
            backbone=TINY,
            attention=True,
            attention_stages=(-2, -1),
            labels="paper13",
            image_size=64,
            epochs=3,
            lr=5e-3,
            warmup_epochs=0.5,
            val_fraction=0.25,
            workers=0,
            threads=1,
            progress=False,
        )
    )
    return out


@pytest.fixture(scope="module")
def own_films(tmp_path_factory) -> Path:
    """Other films (another phantom seed) in a CSV a user would write: path, one label, a centre."""
    root = tmp_path_factory.mktemp("own") / "films"
    generate_phantom(root, n=240, size=64, seed=1, workers=1)
    entry = pd.read_csv(next(root.glob("Data_Entry*.csv")))
    table = pd.DataFrame(
        {
            "path": "images/" + entry["Image Index"],
            "Abnormal": (entry["Finding Labels"] != "No Finding").astype(int),
            "centre": ["north" if p % 2 else "south" for p in entry["Patient ID"]],
            "patient": entry["Patient ID"],
        }
    )
    table.to_csv(root / "mine.csv", index=False)
    return root / "mine.csv"


@pytest.fixture(scope="module")
def fine_tuned(source_run, own_films, tmp_path_factory):
    """`fit --data mine.csv --pretrained SOURCE_RUN`: no backbone, size or rate given."""
    out = tmp_path_factory.mktemp("runs") / "fine-tuned"
    argv = ["fit", "--data", str(own_films), "--pretrained", str(source_run), "--epochs", "3"]
    argv += ["--val-fraction", "0.25", "--min-steps", "0", "--out", str(out), *QUIET]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(argv) == 0
    return RunFolder(out), err.getvalue()


def test_a_project_run_with_other_labels_starts_a_run_that_learns(fine_tuned, source_run):
    run, err = fine_tuned
    lines = [line for line in err.splitlines() if line.startswith("starting from")]
    assert len(lines) == 1  # one line says what was taken and what was left
    assert lines[0].startswith(f"starting from {source_run} (test_efficientnet+attention, learnt ")
    assert "took its backbone, gates after stage3, stage4 and input (" in lines[0]
    assert "64 px as it learnt" in lines[0] and "fresh: a head for Abnormal" in lines[0]
    assert "left its head (Atelectasis, " in lines[0]
    assert f"lr {LR_FROM_PROJECT_MODEL:g}" in err
    history = run.history()
    assert len(history) == 3
    assert history["val_macro_auc"].max() > 0.75  # measured 0.84; from scratch 0.69 in 3 epochs
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    model = json.loads((run.path / "config.json").read_text())["model"]
    # The new labels; the start's architecture and size where none was given.
    assert model["labels"] == ["Abnormal"] and model["image_size"] == 64
    assert model["backbone"] == TINY and model["attention_stages"] == [-2, -1]


def test_the_run_records_where_it_started_and_inspect_shows_it(
    fine_tuned, source_run, own_films, capsys
):
    run, _ = fine_tuned
    start = json.loads((run.path / "config.json").read_text())["start"]
    assert start["from"] == str(source_run)
    assert start["checkpoint"] == str((source_run / "checkpoint.pt").resolve())
    assert start["variant"] == "test_efficientnet+attention" and start["labels"] == list(PAPER13)
    assert start["image_size"] == 64 and start["input"]["in_chans"] == 3
    assert start["took"] == ["backbone", "gates after stage3, stage4"]
    assert start["fresh"] == ["a head for Abnormal"]
    assert start["trained_on"]["source"] == "phantom"
    training = load_checkpoint(run.checkpoint).training
    assert training["start"] == start and training["pretrained"] == str(source_run)
    assert main(["inspect", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert f"started from     {source_run} (test_efficientnet+attention: Atelectasis" in out
    assert "took backbone, gates after stage3, stage4; left its head" in out
    assert f"trained on       table at {own_films.resolve()} (" in out  # the CSV, not its folder


def test_the_new_model_holds_the_start_weights_and_input_contract(source_run, tmp_path):
    """Backbone and gates are the start's tensors, the head is new; an 8-bit copy carries its
    expanded weights, and whatever input fields the start's model config records come along."""
    data = read_checkpoint_data(source_run / "checkpoint.pt")
    data["model"] = data["model"] | {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    custom = tmp_path / "custom.pt"
    torch.save(data, custom)
    compact = tmp_path / "compact.pt"
    torch.save(compact_checkpoint(data), compact)
    for start in (custom, compact):
        options = {"data": "unused", "out": str(tmp_path / "run"), "pretrained": str(start)}
        config = FitConfig.from_dict(options)
        model = build_model(config, ("Abnormal",))
        assert model.config.mean == (0.5, 0.5, 0.5) and model.config.std == (0.25, 0.25, 0.25)
        saved = torch.load(start, weights_only=True)
        expected = expand_weights(saved["state_dict"], saved.get("quantized"))
        mine = model.state_dict()
        parts = model_parts(model)
        kinds = {part.kind for part in parts.values()}
        assert kinds == {BACKBONE, GATE, HEAD}
        for key, part in parts.items():
            if part.kind == HEAD:
                assert key not in expected or mine[key].shape != expected[key].shape
            else:
                assert torch.equal(mine[key], expected[key]), key  # same names: same layout


def test_the_shipped_real_film_models_start_a_run(tmp_path):
    """Each model of assets/zoo-pneumonia (8-bit copies) starts a run for new labels at 96 px;
    the class-specific one brings its earlier head stage along."""
    for folder in sorted(p for p in ZOO.iterdir() if p.is_dir()):
        options = {"data": "unused", "out": str(tmp_path), "pretrained": str(folder)}
        config = FitConfig.from_dict(options | {"image_size": 96})
        assert check_pretrained(config) == (folder / "checkpoint.pt")
        start = load_checkpoint(folder / "checkpoint.pt")
        assert config.head_stage == start.config.head_stage and config.lr == LR_FROM_PROJECT_MODEL
        model = build_model(config, ("COVID-19", "Viral Pneumonia"))
        assert torch.equal(model.backbone.conv_stem.weight, start.model.backbone.conv_stem.weight)
        assert model.config.labels == ("COVID-19", "Viral Pneumonia")


def _refusal(capsys, *argv: str) -> str:
    """The one line `fit` ends with; --data names no folder, so the start was judged first."""
    assert main(["fit", "--data", "no-such-folder", "--epochs", "1", *argv, *QUIET]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_a_mismatched_start_is_refused_in_one_line(source_run, tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")]
    err = _refusal(capsys, "--pretrained", str(source_run), "--backbone", "test_resnet", *out)
    assert err == (
        f"cxr-attention fit: error: {source_run} is a test_efficientnet model and this run trains "
        "test_resnet: start from a test_resnet model, or train test_efficientnet "
        "(--backbone test_efficientnet)"
    )
    err = _refusal(capsys, "--pretrained", str(source_run), "--attention-kind", "cbam", *out)
    assert "gate after stage3 is another attention layout (spatial, 7x7, maxmean; " in err
    assert "this model's: cbam, 7x7, maxmean)" in err
    # A class-specific model that ends one stage early has no weights for the last stage.
    early = AttentionClassifier(
        ModelConfig(TINY, ("A",), attention=True, attention_kind="class", head_stage=-2)
    )
    save_checkpoint(tmp_path / "early.pt", early)
    err = _refusal(capsys, "--pretrained", str(tmp_path / "early.pt"), "--head-stage", "-1", *out)
    assert "has no weights for" in err and "train with --head-stage -2" in err
    (tmp_path / "empty").mkdir()
    err = _refusal(capsys, "--pretrained", str(tmp_path / "empty"), "--backbone", TINY, *out)
    assert "is a folder without checkpoint.pt" in err
    assert not (tmp_path / "run").exists()


def test_a_start_that_is_no_model_is_refused_in_one_line(source_run, tmp_path, capsys):
    """A mistyped run folder names the path, not the --backbone it would have given; a file that
    is not weights (the run's history.csv) says it cannot be read, with no traceback."""
    out = ["--out", str(tmp_path / "run")]
    err = _refusal(capsys, "--pretrained", str(tmp_path / "no-such-run"), *out)
    assert err.startswith(
        f"cxr-attention fit: error: pretrained weights not found: {tmp_path / 'no-such-run'}; "
        "--pretrained takes a run folder or checkpoint of cxr-attention, or timm weights"
    )
    history = source_run / "history.csv"
    err = _refusal(capsys, "--pretrained", str(history), "--backbone", TINY, *out)
    assert err.startswith(f"cxr-attention fit: error: pretrained weights {history} cannot be read")
    assert err.endswith(
        "--pretrained takes a run folder or checkpoint of cxr-attention, timm weights (.safetensors or .pth) or imagenet"
    )
    assert not (tmp_path / "run").exists()


def test_a_rate_given_wins_over_the_default_from_a_project_model(source_run, tmp_path):
    options = {"data": "d", "out": str(tmp_path), "pretrained": str(source_run)}
    assert FitConfig.from_dict(options).lr == LR_FROM_PROJECT_MODEL == 2e-3
    assert FitConfig.from_dict(options | {"lr": 5e-4}).lr == 5e-4


def test_a_refusal_names_the_start_in_python_too(source_run, tmp_path):
    config = FitConfig.from_dict(
        {"data": "d", "out": str(tmp_path), "pretrained": str(source_run), "attention": False}
    )
    model = build_model(config, ("Abnormal",))  # a baseline from a gated start: gates left
    assert not model.has_attention
    with pytest.raises(PretrainedWeightsError, match="is a test_efficientnet model"):
        check_pretrained(FitConfig.from_dict({**config.to_dict(), "backbone": "test_resnet"}))
