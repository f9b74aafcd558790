"""`demo`: `--retrain` trains and ships a zoo; the demo installs it with its evaluation, once.

Everything is tiny (48-film phantoms at 64 px; the zoo's models on timm's 0.4 M-parameter
`test_resnet` through the hidden --backbones, 32 px, two epochs of two batches): these tests check
the orchestration (folders, the zoo record, the shipped evaluation, the demo marker), not how
well the models learn, which the training tests and tests/test_zoo.py check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cxr_attention.core.models.checkpoint import load_checkpoint, read_checkpoint_data
from cxr_attention.core.trust.features import INPUT
from cxr_attention.train.cli import main
from cxr_attention.train.zoos.recipes import CLASS_RECIPE
from tests.test_sweep import REPO, TINY, mtimes


@pytest.mark.slow
def test_demo_retrain_ships_a_zoo_then_the_demo_evaluates_it_once(tmp_path, capsys):
    folder, zoo = tmp_path / "demo", tmp_path / "zoo"
    shrink = ["--images", "48", "--train-images", "48", "--size", "64"]
    shrink += ["--backbones", "test_resnet", *TINY, "--localize-limit", "4"]
    argv = ["demo", "--no-app", "--dir", str(folder), "--zoo", str(zoo), "--no-progress"]
    argv += [*shrink, "--n-resamples", "10"]
    assert main([*argv, "--retrain"]) == 0
    err = capsys.readouterr().err
    # the zoo's own steps, then the demo's
    assert "1. training phantom: 48 films at 64 px, seed 0" in err and "[6/6]" in err
    assert "1. evaluation phantom: 48 films at 64 px, seed 2026" in err and "[13/13]" in err
    record = json.loads((zoo / "ZOO.json").read_text())
    assert record["command"] == "cxr-attention demo --retrain --zoo assets/zoo"
    # the baseline, the paper's gate and the class-specific head (the zoo's recipe: stage 2, T 99)
    names = ["test_resnet", "test_resnet+attention", "test_resnet+class"]
    assert list(record["runs"]) == names
    assert record["recipe"]["variant_options"][names[2]] == CLASS_RECIPE
    assert record["runs"][names[2]]["localization_method"] == "attention"
    assert record["runs"][names[2]]["map_stage"] == "class"
    for name in names:
        shipped = zoo / name / "checkpoint.pt"
        full = folder / "training" / "runs" / name / "checkpoint.pt"
        assert shipped.stat().st_size < 0.6 * full.stat().st_size  # 8-bit weights
        assert read_checkpoint_data(shipped)["quantized"]  # (the OOD description stays float32)
        assert record["runs"][name]["size_bytes"] == shipped.stat().st_size
        run = folder / "runs" / name
        assert (run / "metrics.json").is_file() and (run / "localization.json").is_file()
        assert (run / "timeline" / "images.npz").is_file()
        metrics = json.loads((run / "metrics.json").read_text())
        # evaluated on the evaluation phantom, which no model trained on
        assert Path(metrics["data"]["root"]) == folder / "phantom"
        assert record["runs"][name]["test_macro_auc"] == round(metrics["macro_auc"], 4)
    assert (folder / "report" / "report.html").is_file()

    # the next call goes straight to the app, also from another process
    before = mtimes(folder / "runs" / names[0])
    second = subprocess.run(
        [sys.executable, "-m", "cxr_attention.train.cli", *argv], capture_output=True, text=True, cwd=REPO,
        timeout=120,
    )  # fmt: skip
    assert second.returncode == 0
    assert "already built" in second.stderr and "[1/" not in second.stderr
    assert mtimes(folder / "runs" / names[0]) == before

    # a demo in another folder draws the same films and installs the zoo's own evaluation of them
    other = tmp_path / "other"
    assert main([*argv[:3], str(other), *argv[4:]]) == 0
    err = capsys.readouterr().err
    assert err.count("shipped evaluation of these very films installed") == len(names)
    for name in names:
        metrics = json.loads((other / "runs" / name / "metrics.json").read_text())
        assert Path(metrics["data"]["root"]) == other / "phantom"  # where the films now are
        assert record["runs"][name]["test_macro_auc"] == round(metrics["macro_auc"], 4)
    assert (other / "report" / "report.html").is_file()

    # --only retrains one variant and keeps the others' weights and training times
    kept = {name: (zoo / name / "checkpoint.pt").stat().st_mtime_ns for name in names[:2]}
    assert main([*argv, "--retrain", "--only", names[2]]) == 0
    assert "train test_resnet+class" in capsys.readouterr().err
    again = json.loads((zoo / "ZOO.json").read_text())
    assert list(again["runs"]) == names
    for name in names[:2]:
        assert (zoo / name / "checkpoint.pt").stat().st_mtime_ns == kept[name]
        assert again["runs"][name]["train_seconds"] == record["runs"][name]["train_seconds"]
    record = again

    # --refit-trust gives a zoo fitted before the input's layout existed its layout again,
    # keeping the weights (the shipped zoo's upgrade path)
    shipped = zoo / names[0] / "checkpoint.pt"
    old = read_checkpoint_data(shipped)
    old["ood"]["layers"] = [layer for layer in old["ood"]["layers"] if layer["name"] != INPUT]
    torch.save(old, shipped)
    assert INPUT not in load_checkpoint(shipped).ood.layer_names
    assert main([*argv, "--refit-trust"]) == 0
    assert "describe test_resnet's training films again" in capsys.readouterr().err
    refitted = read_checkpoint_data(shipped)
    assert load_checkpoint(shipped).ood.layer_names[0] == INPUT
    assert refitted["state_dict"].keys() == old["state_dict"].keys()
    for key, value in old["state_dict"].items():
        assert torch.equal(refitted["state_dict"][key], value), key
    assert list(json.loads((zoo / "ZOO.json").read_text())["runs"]) == names

    # a mistyped --zoo is refused in one line, not answered with an hour of training
    assert main([*argv[:5], str(tmp_path / "no-zoo"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no demo zoo (no ZOO.json)" in err

    # a zoo without one of its models is refused in one line, also before refitting any
    (zoo / names[1] / "checkpoint.pt").unlink()
    assert main([*argv, "--rebuild"]) == 2
    assert "lacks test_resnet+attention" in capsys.readouterr().err
    before = (zoo / names[0] / "checkpoint.pt").stat().st_mtime_ns
    assert main([*argv, "--refit-trust"]) == 2
    assert "lacks test_resnet+attention" in capsys.readouterr().err
    assert (zoo / names[0] / "checkpoint.pt").stat().st_mtime_ns == before


def test_a_zoo_made_or_refitted_goes_to_the_users_folder_never_the_installation(tmp_path):
    from argparse import Namespace

    from cxr_attention.train.commands.demo import user_zoo
    from cxr_attention.train.zoos.record import read_zoo
    from cxr_attention.train.zoos.registry import PHANTOM_ZOO

    made = user_zoo(tmp_path, Namespace(retrain=True, data=None))
    assert made == tmp_path / "zoo" and not made.exists()  # training writes it there
    refitted = user_zoo(tmp_path / "b", Namespace(retrain=False, data=None))
    # refitting starts from a copy of the shipped zoo, in the user's folder
    assert refitted == tmp_path / "b" / "zoo"
    assert read_zoo(refitted) == read_zoo(PHANTOM_ZOO.folder)
    real = user_zoo(tmp_path, Namespace(retrain=True, data="/films/pneumonia"))
    assert real == tmp_path / "zoo-pneumonia"
