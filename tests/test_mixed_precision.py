"""The GPU path's numerics on the CPU: `fit --amp bf16` runs bfloat16 autocast and channels-last, as
CUDA does, so every commit tests them (issue 23).

For each attention kind (the baseline, the paper's spatial gate, CBAM, the class-specific head) a
short training under bf16 + channels-last and one in float32 with the same seed: the bf16 run records
its precision, resumes in it, learns as the float32 one does, and evaluates, predicts, studies and
serves in the app. The bf16 plan on the float32 run's own weights (autocast and channels-last, as
training validates and a GPU runs) gives validation AUC within 0.02 of float32 and maps that
correlate >= 0.95 with float32's.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.methods import explain
from cxr_attention.core.metrics.auc import macro_auc
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.device import plan_device
from cxr_attention.train.cli import main

KINDS = (None, "spatial", "cbam", "class")
SIZE = 64


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom") / "data"
    generate_phantom(root, n=400, size=SIZE, seed=0, workers=1)
    return root


def config(data, out, kind, amp, **changes) -> FitConfig:
    options = dict(
        data=str(data),
        out=str(out),
        backbone="test_efficientnet",
        attention=kind is not None,
        attention_kind=kind or "spatial",
        labels="paper13",
        image_size=SIZE,
        epochs=4,
        batch_size=32,
        lr=5e-3,
        warmup_epochs=0.5,
        val_fraction=0.25,
        workers=0,
        threads=1,
        progress=False,
        amp=amp,
    )
    return FitConfig(**(options | changes))


@pytest.fixture(scope="module")
def pairs(phantom, tmp_path_factory):
    """{kind: (float32 run, bf16 run)}, the bf16 one trained in two calls (stop, then resume)."""
    out = tmp_path_factory.mktemp("runs")
    runs = {}
    for kind in KINDS:
        name = kind or "baseline"
        full = fit(config(phantom, out / f"{name}-fp32", kind, "off"))
        fit(config(phantom, out / f"{name}-bf16", kind, "bf16", stop_after=2))
        half = fit(config(phantom, out / f"{name}-bf16", kind, "bf16", resume=True))
        runs[kind] = (full.path, half.path)
    return runs


def test_bf16_on_the_cpu_is_the_gpu_plan_and_fp16_needs_cuda():
    plan = plan_device("cpu", "bf16")
    assert plan.amp == "bf16" and plan.channels_last and plan.amp_dtype is torch.bfloat16
    assert plan_device("cpu", "auto").amp == "off" and plan_device("cpu", True).amp == "off"
    assert not plan_device("cpu", "auto").channels_last
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        plan_device("cpu", "fp16")
    with pytest.raises(ConfigError, match="amp 'half'"):
        FitConfig(data="d", out="o", backbone="b", amp="half")


def bf16_numerics(run, views: np.ndarray, label: str):
    """The run's validation probabilities and own maps of `label` in float32, and again under the
    bf16 plan (autocast and channels-last, as training validates and a GPU evaluates)."""
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    model = checkpoint.model
    method = "attention" if checkpoint.config.attention else "gradcam"
    x = config_input(views, checkpoint.config)
    plan = plan_device("cpu", "bf16")
    out = []
    for autocast in (False, True):
        if autocast:
            model = model.to(memory_format=torch.channels_last)
            x = plan.images(x)
        context = plan.autocast() if autocast else contextlib.nullcontext()
        with context, torch.no_grad():
            probabilities = torch.sigmoid(model(x).float()).numpy()
        with context:
            explanation = explain(model, x, [label], method)
        maps = np.stack([explanation.map(label, image=i) for i in range(len(views))])
        out.append((probabilities, maps.astype(np.float32)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k or "baseline")
def test_the_bf16_plan_gives_float32_figures_and_maps(pairs, phantom, kind):
    full, half = pairs[kind]
    index = open_dataset(phantom, labels="paper13", val_fraction=0.25, seed=0)
    frame = index.split("val")
    views = np.stack([model_view(load_radiograph(p).pixels, SIZE) for p in frame["path"]])
    (p32, m32), (p16, m16) = bf16_numerics(full, views, "Cardiomegaly")
    truth = index.targets(frame)
    assert abs(macro_auc(truth, p32) - macro_auc(truth, p16)) <= 0.02
    r = np.corrcoef(m32.ravel(), m16.ravel())[0, 1]
    assert r >= 0.95, r


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k or "baseline")
def test_bf16_training_records_resumes_and_learns_as_float32(pairs, kind):
    full, half = pairs[kind]
    recorded = json.loads((half / "config.json").read_text())
    assert recorded["amp"] == "bf16" and recorded["channels_last"] is True  # through the resume
    assert recorded["fit"]["amp"] == "bf16"
    checkpoint = load_checkpoint(half / "checkpoint.pt")
    assert all(p.dtype == torch.float32 for p in checkpoint.model.parameters())  # master weights
    history = {run: pd.read_csv(run / "history.csv") for run in (full, half)}
    assert list(history[half]["epoch"]) == [1, 2, 3, 4]
    auc = {run.name: float(h["val_macro_auc"].iloc[-1]) for run, h in history.items()}
    # two trainings drift apart step by step (0.00-0.05 AUC at 4 epochs on 100 validation films,
    # either way): what bf16 must not do is stall or diverge
    assert auc[half.name] > 0.6 and abs(auc[full.name] - auc[half.name]) <= 0.08, auc
    assert np.isfinite(history[half]["train_loss"]).all()


@pytest.mark.slow
def test_a_bf16_run_evaluates_predicts_studies_and_serves(pairs, phantom, capsys):
    half = pairs["class"][1]
    assert main(["evaluate", str(half), "--n-resamples", "0", "--no-progress"]) == 0
    metrics = json.loads((half / "metrics.json").read_text())
    assert 0.5 < metrics["macro_auc"] <= 1.0
    checkpoint = load_checkpoint(half / "checkpoint.pt")
    assert checkpoint.calibration is not None  # fitted in float32 from the bf16 run
    assert checkpoint.ood is not None
    temperatures = (
        checkpoint.calibration.as_dict() if hasattr(checkpoint.calibration, "as_dict") else {}
    )
    assert all(np.isfinite(float(t)) for t in dict(temperatures).values())
    film = open_dataset(phantom, labels="paper13").items["path"].iloc[0]
    capsys.readouterr()
    assert main(["predict", str(half / "checkpoint.pt"), str(film), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert set(result["probabilities"]) == set(checkpoint.labels)
    assert all(0.0 <= p <= 1.0 for p in result["probabilities"].values())
    assert main(["study", str(half), "--limit", "8", "--repeats", "1"]) == 0
    study = json.loads((half / "study.json").read_text())
    assert "attention:class" in study["maps"]

    from cxr_attention.app.inference import analyse_view, load_model

    loaded = load_model(str(half / "checkpoint.pt"))
    view = model_view(load_radiograph(film).pixels, SIZE)
    analysis = analyse_view(loaded, view, "Cardiomegaly", "attention", False)
    assert np.isfinite(analysis.probabilities).all()
