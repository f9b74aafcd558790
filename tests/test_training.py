"""A short real training on the phantom learns, and leaves a run folder others can rely on.

Everything runs on the CPU with one torch thread (fast and deterministic on a shared machine) and
timm's 0.1 M-parameter `test_efficientnet`, which has the same stage structure as the paper's
EfficientNets.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from safetensors.torch import save_file

from cxr_attention.core.data.cache import build_cache
from cxr_attention.core.data.loader import RadiographDataset
from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.errors import ConfigError, PretrainedWeightsError, RunError
from cxr_attention.core.labels import ALL14, PAPER13
from cxr_attention.core.metrics.auc import macro_auc, per_class_auc
from cxr_attention.core.models.checkpoint import (
    load_checkpoint,
    read_checkpoint_data,
    save_checkpoint,
)
from cxr_attention.core.models.compact import compact_checkpoint
from cxr_attention.core.runs import RunFolder
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.config import LR_FROM_SCRATCH, LR_PRETRAINED
from cxr_attention.core.training.model import build_model
from cxr_attention.core.training.optim import WarmupCosine
from cxr_attention.train.cli import build_parser, main
from cxr_attention.train.commands.fit import PRESETS, load_preset, resolve_options

TINY = "test_efficientnet"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom") / "data"
    generate_phantom(root, n=800, size=64, seed=0, workers=1)
    # the 64 px image cache (`cxr-attention cache`): every fit here reads it instead of decoding
    # each film every epoch (12,000 decodes, 3 s of the module's 60 s, profiled). A row is the
    # decoded view exactly: the trained fixture's history.csv is identical with and without it.
    build_cache(open_dataset(root, labels="paper13"), 64, workers=1, progress=False)
    return root


def quick_config(data, out, **changes) -> FitConfig:
    options = dict(
        data=str(data),
        out=str(out),
        backbone=TINY,
        attention=True,
        labels="paper13",
        image_size=64,
        epochs=6,
        batch_size=32,
        lr=5e-3,  # the 0.1 M-parameter test network likes a larger step than MobileNetV2
        warmup_epochs=0.5,
        val_fraction=0.25,
        workers=0,
        threads=1,
        progress=False,
    )
    return FitConfig(**(options | changes))


@pytest.fixture(scope="module")
def trained(phantom, tmp_path_factory):
    config = quick_config(phantom, tmp_path_factory.mktemp("runs") / "tiny+attention")
    return config, fit(config)


def validation_scores(run: RunFolder, data) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The best checkpoint's (calibrated) scores on the validation split, computed independently."""
    checkpoint = load_checkpoint(run.checkpoint)
    split = checkpoint.training["data"]["split"]
    index = open_dataset(
        data, labels="paper13", val_fraction=split["val_fraction"], seed=split["seed"]
    )
    frame = index.split("val")
    images = RadiographDataset(frame, index.labels, checkpoint.config.image_size)
    pixels = torch.from_numpy(images.read_images(np.arange(len(images)))).unsqueeze(1)
    with torch.no_grad():
        logits = checkpoint.model(config_input(pixels, checkpoint.config))
    return index.targets(frame), checkpoint.probabilities(logits).numpy(), index.labels


@pytest.mark.slow
def test_short_training_on_the_phantom_learns(trained, phantom):
    _config, run = trained
    history = run.history()
    assert list(history["epoch"]) == list(range(1, 7))
    best = history.loc[history["val_macro_auc"].idxmax()]
    assert best["val_macro_auc"] > 0.65  # chance is 0.5
    assert best["val_micro_auc"] > 0.70
    # Better than knowing only each label's base rate (the loss the head starts from).
    index = open_dataset(phantom, labels="paper13", val_fraction=0.25, seed=0)
    rate = index.targets(index.split("train")).mean(axis=0).clip(1e-6, 1 - 1e-6)
    base_rate_loss = float(np.mean(-(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))))
    assert history["train_loss"].iloc[0] < 1.2 * base_rate_loss  # no spike from a random head
    assert history["train_loss"].iloc[-1] < 0.85 * base_rate_loss
    # The saved best model really scores that well on the validation images, recomputed here.
    truth, scores, labels = validation_scores(run, phantom)
    assert labels == PAPER13
    assert macro_auc(truth, scores) == pytest.approx(best["val_macro_auc"], abs=2e-3)
    # A large finding drawn on every phantom film is learnt well even at 64 px.
    assert per_class_auc(truth, scores)[labels.index("Cardiomegaly")] > 0.85


@pytest.mark.slow
def test_run_folder_records_what_was_trained(trained, phantom):
    config, run = trained
    assert sorted(p.name for p in run.path.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "history.csv",
        "last.pt",
        "tensorboard",
        "timeline",
    ]
    recorded = json.loads((run.path / "config.json").read_text())
    assert FitConfig.from_dict(recorded["fit"]) == config
    assert recorded["seed"] == 0 and recorded["world_size"] == 1
    assert recorded["device"] == "cpu" and recorded["amp"] == "off"
    assert recorded["package_version"] == "0.1.0" and recorded["torch_version"] == torch.__version__
    data = recorded["data"]
    index = open_dataset(phantom, labels="paper13", val_fraction=0.25, seed=0)
    assert data["source"] == "phantom" and data["fingerprint"] == index.fingerprint
    assert data["label_set"] == "paper13" and data["labels"] == list(PAPER13)
    assert data["split"]["sizes"] == {
        name: len(index.split(name)) for name in ("train", "val", "test")
    }
    assert recorded["model"]["attention"] is True and recorded["model"]["image_size"] == 64

    history = pd.read_csv(run.path / "history.csv")
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "val_loss",
        "val_macro_auc",
        "val_micro_auc",
        "lr",
        "seconds",
        "images_per_s",
    ]
    # Cosine decay: the learning rate falls to lr x min_lr_ratio by the last epoch.
    assert history["lr"].is_monotonic_decreasing
    assert history["lr"].iloc[-1] == pytest.approx(config.lr * config.min_lr_ratio, rel=1e-3)
    n_train = data["split"]["sizes"]["train"]
    images_per_epoch = (n_train // config.batch_size) * config.batch_size  # ragged end dropped
    assert (history["images_per_s"] * history["seconds"] > 0.5 * images_per_epoch).all()

    checkpoint = load_checkpoint(run.checkpoint)
    training = checkpoint.training
    best_epoch = int(history.loc[history["val_macro_auc"].idxmax(), "epoch"])
    assert training["best_epoch"] == best_epoch and training["epochs"] == 6
    assert training["best_val_macro_auc"] == pytest.approx(history["val_macro_auc"].max(), abs=1e-6)
    assert training["seed"] == 0 and training["pretrained"] is None
    assert training["data"]["fingerprint"] == index.fingerprint
    assert training["stopped"] == "epochs"
    # Thresholds are chosen on VALIDATION scores of the best model, per label.
    assert set(training["thresholds"]) == set(PAPER13)
    truth, scores, labels = validation_scores(run, phantom)
    k = labels.index("Cardiomegaly")
    youden = training["thresholds"]["Cardiomegaly"]["youden"]
    called = scores[:, k] >= youden
    positives = truth[:, k] == 1
    j = called[positives].mean() + (~called[~positives]).mean() - 1
    assert j > 0.5  # Youden's J at the stored threshold on the images it was chosen on


def test_the_default_learning_rate_follows_the_starting_point():
    scratch = FitConfig(data="d", out="o", backbone=TINY)
    assert scratch.lr == LR_FROM_SCRATCH == 2e-3
    weights = FitConfig(data="d", out="o", backbone=TINY, pretrained="w.safetensors")
    assert weights.lr == LR_PRETRAINED == 1e-4
    assert FitConfig(data="d", out="o", backbone=TINY, lr=0.01).lr == 0.01


@pytest.mark.slow
def test_the_quick_tour_recipe_learns_where_a_fine_tuning_rate_does_not(phantom, tmp_path, capsys):
    """The README's tour flags as written (attention, 4 epochs, batch 32, no --lr, no --pretrained)
    on the suite's tiny network at 64 px (MobileNetV2 takes minutes: the tour itself reaches a test
    macro AUC of 0.83 in 3 min 20 s, docs/attention-diagnosis.md). The from-scratch default learns;
    the old fine-tuning default of 1e-4 stays near chance."""

    def tour(out: str, *extra: str) -> float:
        argv = ["fit", "--data", str(phantom), "--backbone", TINY, "--attention"]
        argv += ["--image-size", "64", "--epochs", "4", "--batch-size", "32", *extra]
        argv += ["--out", str(tmp_path / out), "--workers", "0", "--threads", "1", "--no-progress"]
        assert main(argv) == 0
        return RunFolder(tmp_path / out).history()["val_macro_auc"].max()

    learned = tour("default")
    assert "lr 0.002 (the from-scratch default: no --pretrained weights)" in capsys.readouterr().err
    assert learned > 0.68  # measured 0.74
    assert tour("fine-tuning-rate", "--lr", "1e-4") < 0.6  # measured 0.53


def test_schedule_warms_up_linearly_then_decays_by_cosine():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = WarmupCosine(
        optimizer, peak_lr=1e-3, total_steps=110, warmup_steps=10, min_ratio=0.1
    )
    rates = []
    for _ in range(110):
        rates.append(optimizer.param_groups[0]["lr"])
        schedule.step()
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[10] == pytest.approx(1e-3)
    assert rates[60] == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[-1] == pytest.approx(1e-4, rel=0.01)
    # The whole state is one step counter: a fresh schedule picks up at the same rate.
    again = WarmupCosine(optimizer, peak_lr=1e-3, total_steps=110, warmup_steps=10, min_ratio=0.1)
    again.load_state_dict({"steps_done": 60})
    assert optimizer.param_groups[0]["lr"] == pytest.approx(rates[60])


def test_a_missing_pretrained_file_is_refused_before_the_data_or_the_network(tmp_path, no_network):
    """The weights are checked first: the data folder here does not exist, yet the error is
    about the weights; no connection is tried and no run folder is left behind."""
    config = quick_config(
        tmp_path / "no-data", tmp_path / "run", pretrained=str(tmp_path / "w.pth")
    )
    with pytest.raises(PretrainedWeightsError, match=r"not found: .*w\.pth.*--pretrained"):
        fit(config)
    assert no_network == []
    assert not (tmp_path / "run").exists()


def test_local_pretrained_weights_load_without_any_network(tmp_path, no_network):
    source = timm.create_model(TINY, num_classes=0, global_pool="")
    weights = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, weights)
    model = build_model(quick_config(tmp_path, tmp_path / "run", pretrained=str(weights)), ALL14)
    loaded = model.backbone.state_dict()
    for name, tensor in source.state_dict().items():
        if name in loaded:  # gated stages rename their inner modules
            assert torch.equal(loaded[name], tensor), name
    assert torch.equal(model.backbone.conv_stem.weight, source.conv_stem.weight)
    assert no_network == []


def test_weights_of_another_backbone_are_refused_naming_the_file(tmp_path):
    weights = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.bias": torch.zeros(10)}, weights)
    with pytest.raises(PretrainedWeightsError, match=r"resnet\.pth do not fit test_efficientnet"):
        build_model(quick_config(tmp_path, tmp_path / "run", pretrained=str(weights)), ALL14)


def test_an_existing_run_is_not_overwritten(tmp_path, phantom):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(RunError, match="already holds a run: pass --resume"):
        fit(quick_config(phantom, out))


def test_a_run_killed_before_its_ood_fit_gets_it_on_resume(trained, tmp_path):
    """Killed after the last epoch's checkpoint but before the end-of-run fit: --resume trains
    nothing and fits the OOD description and temperatures it lacks."""
    config, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run.path, copy)
    checkpoint = load_checkpoint(copy / "checkpoint.pt")
    training = {k: v for k, v in checkpoint.training.items() if k != "stopped"}
    save_checkpoint(copy / "checkpoint.pt", checkpoint.model, training)  # as after the last epoch
    history = (copy / "history.csv").read_text()

    fit(replace(config, out=str(copy), resume=True))
    data = read_checkpoint_data(copy / "checkpoint.pt")
    # the same model on the same films: the temperatures the run first fitted, and its OOD
    # description but for the training films in the shuffle's dropped last batch (0.5% apart)
    original = read_checkpoint_data(run.checkpoint)
    assert data["ood"]["n_train"] == original["ood"]["n_train"] > 0
    assert data["ood"]["threshold"] == pytest.approx(original["ood"]["threshold"], rel=0.05)
    temperatures = data["calibration"]["temperature"]
    assert temperatures == pytest.approx(original["calibration"]["temperature"], rel=1e-4)
    assert set(temperatures) == set(PAPER13)
    assert data["training"]["stopped"] == "epochs"
    assert (copy / "history.csv").read_text() == history  # no epoch trained again
    # and a finished run stays as it is
    before = (copy / "checkpoint.pt").stat().st_mtime_ns
    fit(replace(config, out=str(copy), resume=True))
    assert (copy / "checkpoint.pt").stat().st_mtime_ns == before


def test_bad_options_are_refused_by_name():
    with pytest.raises(ConfigError, match="batch_size must be a whole number"):
        FitConfig(data="d", out="o", backbone=TINY, batch_size=0)
    with pytest.raises(ConfigError, match="unknown fit option.*learning_rate"):
        FitConfig.from_dict({"data": "d", "out": "o", "backbone": TINY, "learning_rate": 1})
    with pytest.raises(ConfigError, match="missing --backbone"):
        FitConfig.from_dict({"data": "d", "out": "o"})


def test_fit_refuses_a_finer_map_for_a_backbone_that_cannot_dilate(phantom, tmp_path, capsys):
    out = tmp_path / "vgg"
    argv = ["fit", "--data", str(phantom), "--backbone", "vgg11", "--output-stride", "16"]
    assert main([*argv, "--image-size", "64", "--out", str(out), "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert err == [
        "cxr-attention fit: error: vgg11 cannot change its output stride (not supported): "
        "leave --output-stride at 32"
    ]
    assert not out.exists()  # refused before a run folder was made


def test_presets_hold_fitconfig_fields_and_flags_override_them(capsys):
    for path in PRESETS.glob("*.yaml"):
        FitConfig.from_dict({"data": "d", "out": "o", "backbone": TINY} | load_preset(path.stem))
    paper = load_preset("paper")
    assert paper["attention_stages"] == [-2, -1] and paper["labels"] == "paper13"
    assert paper["image_size"] == 224
    args = build_parser("fit").parse_args(
        ["fit", "--preset", "paper", "--data", "d", "--backbone", TINY, "--out", "o",
         "--image-size", "96", "--attention-stages", "-1", "--patience", "0"]
    )  # fmt: skip
    config = FitConfig.from_dict(resolve_options(args))
    assert config.image_size == 96 and config.attention_stages == (-1,)  # flags win
    assert config.patience is None  # 0 switches early stopping off
    assert config.labels == "paper13" and config.epochs == paper["epochs"]  # the preset fills in
    assert config.attention is False  # nothing given, nothing assumed
    assert main(["fit", "--preset", "nope", "--data", "d", "--out", "o", "--backbone", TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0 and "preset 'nope' not found: use one of demo, paper, pneumonia" in err
    )


def test_a_compact_checkpoint_is_small_and_scores_alike(trained, phantom, tmp_path):
    _config, run = trained
    compact = tmp_path / "compact.pt"
    torch.save(compact_checkpoint(read_checkpoint_data(run.checkpoint)), compact)
    # a tiny test model is mostly per-tensor overhead and its OOD description, which stays float32;
    # the weights themselves are int8 (a real MobileNetV2's checkpoint shrinks to about a third)
    assert compact.stat().st_size < 0.7 * run.checkpoint.stat().st_size
    weights = read_checkpoint_data(compact)["state_dict"]
    assert any(t.dtype == torch.int8 for t in weights.values())
    truth, scores, labels = validation_scores(run, phantom)
    shipped = RunFolder(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(compact.read_bytes())
    truth_c, scores_c, _ = validation_scores(shipped, phantom)
    assert np.array_equal(truth, truth_c)
    assert np.abs(scores - scores_c).max() < 0.05  # 8-bit weights move a score a little
    assert macro_auc(truth_c, scores_c) == pytest.approx(macro_auc(truth, scores), abs=0.01)
    assert load_checkpoint(compact).ood is not None  # the OOD description travels, in float32
