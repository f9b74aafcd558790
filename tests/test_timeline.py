"""Watching attention learn: the per-epoch timeline, its TensorBoard twin, and the app's page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cxr_attention.app.settings import RUNS_ENV
from cxr_attention.core.data.phantom import LOCALIZED, generate_phantom
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.timeline import TIMELINE_IMAGES, read_timeline

TIMEOUT = 180
MAIN = Path(__file__).resolve().parents[1] / "app" / "main.py"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    data = tmp_path_factory.mktemp("phantom") / "data"
    generate_phantom(data, n=240, size=64, seed=3, workers=1)
    return data


def tiny_fit(data, out, **changes) -> Path:
    options = dict(
        data=str(data),
        out=str(out),
        backbone="test_efficientnet",
        attention=True,
        attention_stages=(-2, -1),
        image_size=64,
        epochs=3,
        batch_size=32,
        val_fraction=0.3,
        workers=0,
        threads=1,
        progress=False,
    )
    return fit(FitConfig(**(options | changes))).path


@pytest.fixture(scope="module")
def run(phantom, tmp_path_factory):
    return tiny_fit(phantom, tmp_path_factory.mktemp("runs") / "tiny+attention")


def test_a_class_specific_head_records_the_map_of_the_finding_shown(phantom, tmp_path):
    """gate_class: per film, the class head's map of the label the film is shown for."""
    import torch

    from cxr_attention.core.data.preprocess import config_input
    from cxr_attention.core.models.checkpoint import load_checkpoint

    run = tiny_fit(
        phantom, tmp_path / "tiny+class", attention_kind="class", output_stride=16, epochs=2
    )
    timeline = read_timeline(run)
    images = timeline.images
    n = len(images.image_ids)
    assert [m.epoch for m in timeline.epochs] == [1, 2]
    for maps in timeline.epochs:
        assert list(maps.gates) == ["class"]
        assert maps.gates["class"].shape == (n, 4, 4)  # output stride 16 at 64 px
        assert maps.gates["class"].min() >= 0.0 and maps.gates["class"].max() <= 1.0
    # The best epoch's maps are the saved model's, each for its own film's finding.
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    recorded = timeline.epochs[checkpoint.training["best_epoch"] - 1].gates["class"]
    with torch.no_grad():
        out = checkpoint.model.forward_with_maps(config_input(images.views, checkpoint.config))
    shown = [checkpoint.labels.index(finding) for finding in images.findings]
    expected = out.maps["class"][torch.arange(n), shown].numpy()
    np.testing.assert_allclose(recorded, expected, atol=1e-3)  # stored as float16
    # ... and not one label's map for every film: another label's maps differ.
    other = out.maps["class"][torch.arange(n), [(k + 1) % len(checkpoint.labels) for k in shown]]
    assert np.abs(other.numpy() - recorded).max() > 1e-2
    # Its log-odds are kept beside it, to rank places where the probabilities tie at 1.0.
    orders = timeline.epochs[checkpoint.training["best_epoch"] - 1].orders["class"]
    np.testing.assert_allclose(orders, out.log_odds["class"][torch.arange(n), shown], atol=1e-4)


def test_the_timeline_finds_a_sure_class_map_s_peak_by_its_log_odds():
    """A class map at 1.0 everywhere has no peak of its own; its log-odds still point at the
    lesion, and the page's pointing figures and curves follow them."""
    from cxr_attention.app import timeline_view as tv
    from cxr_attention.core.training.timeline import EpochMaps, Timeline, TimelineImages

    truth = np.zeros((1, 16, 16), np.uint8)
    truth[0, 8:16, 0:8] = 1  # the lesion: the bottom-left quarter
    log_odds = np.full((1, 4, 4), 20.0, np.float32)
    log_odds[0, 3, 0] = 30.0  # surest in the bottom-left cell
    tied = np.ones((1, 4, 4), np.float32)  # sigmoid of 20 and of 30 in float32
    images = TimelineImages(None, truth, ("a",), ("Mass",), ("Mass",))
    gradcam, probabilities = np.zeros((1, 2, 2)), np.ones((1, 1))
    recorded = Timeline(
        images, (EpochMaps(1, {"class": tied}, gradcam, probabilities, {"class": log_odds}),)
    )
    old = Timeline(images, (EpochMaps(1, {"class": tied}, gradcam, probabilities),))
    assert tv.pointing_by_epoch(recorded, "class") == [(1, 1.0)]
    assert tv.focus_curves(recorded, 0, "class")["epoch"] == [1]
    assert tv.pointing_by_epoch(old, "class") == [(1, 0.0)]  # a flat map points nowhere


def test_every_epoch_keeps_the_maps_of_the_same_films(run):
    timeline = read_timeline(run)
    assert [m.epoch for m in timeline.epochs] == [1, 2, 3]
    images = timeline.images
    n = len(images.image_ids)
    assert 1 <= n <= TIMELINE_IMAGES
    assert images.views.shape == (n, 64, 64) and images.views.dtype == np.uint8
    # each film shows one localized finding, outlined where its mask is
    assert set(images.findings) <= set(LOCALIZED)
    assert all(images.truth[i].any() for i in range(n))
    for maps in timeline.epochs:
        assert sorted(maps.gates) == ["stage3", "stage4"]
        assert maps.gates["stage3"].shape == (n, 4, 4)  # stride 16 at 64 px
        assert all(g.min() >= 0.0 and g.max() <= 1.0 for g in maps.gates.values())
        assert maps.gradcam.shape == (n, 2, 2) and maps.gradcam.max() <= 1.0
        assert maps.probabilities.shape == (n, 14)
    # the model changes between epochs, and the timeline shows it
    first, last = timeline.epochs[0], timeline.epochs[-1]
    assert not np.allclose(first.probabilities, last.probabilities)
    # the films come from the validation split, never from training
    config = json.loads((run / "config.json").read_text())
    index = open_dataset(config["fit"]["data"], val_fraction=0.3, seed=0)
    assert set(images.image_ids) <= set(index.split("val")["image_id"])


def test_tensorboard_gets_the_epoch_scalars_and_maps(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    history = pd.read_csv(run / "history.csv")
    logged = [e.value for e in events.Scalars("auc/val_macro")]
    assert logged == pytest.approx(history["val_macro_auc"].tolist(), abs=1e-6)
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2, 3]
    assert "attention/stage4" in events.Tags()["images"]


def test_the_app_shows_the_timeline_on_an_epoch_slider(run, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(run.parent))
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/timeline.py").run()
    assert not at.exception
    assert at.select_slider[0].options == ["1", "2", "3"]
    assert at.select_slider[0].value == 3  # the last epoch first
    assert any("Phantom" in w.value or "phantom" in w.value for w in at.warning)
    at.select_slider[0].set_value(1).run()
    assert not at.exception
    assert at.metric[0].label.endswith("after epoch 1")


def test_the_page_says_when_a_class_map_s_peak_comes_from_its_probability(tmp_path, monkeypatch):
    """The shipped phantom zoo's timelines were recorded before the log-odds were kept: the page
    says its class map's peak is taken from the probability; a run recorded now does not need it."""
    import shutil

    zoo = Path(__file__).resolve().parents[1] / "assets" / "zoo"
    shutil.copytree(zoo / "mobilenetv2_100+class", tmp_path / "runs" / "mobilenetv2_100+class")
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "runs"))
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/timeline.py").run()
    assert not at.exception
    assert any("recorded before the class map's log-odds" in c.value for c in at.caption)
