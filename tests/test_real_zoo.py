"""The shipped real-film zoo (assets/zoo-pneumonia): what ZOO.json records, no film shipped, its
trust, and its models on paediatric films of patients none of them trained on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxr_attention.core.data.sources import open_dataset, recorded_options
from cxr_attention.core.inference import ImageFailure, ScoringModel, predict_files
from cxr_attention.core.metrics.auc import macro_auc
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.train.zoos.registry import zoo_named

PNEUMONIA = zoo_named("pneumonia")
REAL_ZOO_DIR = PNEUMONIA.folder

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata-pneumonia"
NAMES = ["mobilenetv2_100", "mobilenetv2_100+attention", "mobilenetv2_100+class"]


@pytest.fixture(scope="module")
def zoo() -> dict:
    return json.loads((REAL_ZOO_DIR / "ZOO.json").read_text())


def test_zoo_json_records_the_recipe_the_figures_and_that_there_are_no_outlines(zoo):
    assert zoo["command"].startswith("cxr-attention demo --retrain --data")
    assert list(zoo["figures"]) == NAMES
    assert zoo["recipe"]["title"] == PNEUMONIA.recipe.title
    assert "no pointing game" in zoo["lesion_outlines"]
    for name, figures in zoo["figures"].items():
        assert figures["n_test_patients"] > 500 and figures["test_auc"] >= 0.95, name
        assert figures["train_seconds"] > 0
        assert set(figures["blanking"]) >= {"mean_drop", "random_mean_drop", "p"}
        assert not any("pointing" in key or "iobb" in key for key in figures)
    for name in NAMES[1:]:  # DeLong, paired, against the baseline
        assert zoo["attention_effect"][name]["against"] == NAMES[0]
        assert "p_value" in zoo["attention_effect"][name]["Pneumonia"]


def test_no_film_is_shipped_and_every_model_knows_what_it_learnt():
    for name in NAMES:
        checkpoint = load_checkpoint(REAL_ZOO_DIR / name / "checkpoint.pt")
        assert checkpoint.labels == ("Pneumonia",)
        data = checkpoint.training["data"]
        assert data["source"] == "class_folders" and "Guangzhou" in data["title"]
        with np.load(REAL_ZOO_DIR / name / "timeline" / "images.npz") as timeline:
            assert "views" not in timeline.files  # which films, never the films
            assert len(timeline["image_ids"]) == 6
    images = [p for p in REAL_ZOO_DIR.rglob("*") if p.suffix.lower() in (".png", ".jpeg", ".jpg")]
    assert not images


def test_the_real_models_flag_phantom_films_and_images_that_are_not_chest_films():
    for name in NAMES:
        trust = json.loads((REAL_ZOO_DIR / name / "trust.json").read_text())
        assert trust["phantom films"]["share"] >= 0.75, (name, trust)  # 0.80-0.89 shipped
        assert trust["not a chest film"]["share"] >= 0.8, (name, trust)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata-pneumonia is absent")
def test_the_shipped_models_read_pneumonia_on_children_they_never_saw():
    checkpoint = load_checkpoint(REAL_ZOO_DIR / NAMES[2] / "checkpoint.pt")
    index = open_dataset(REAL, recorded_options(checkpoint.training["data"], checkpoint.labels))
    frame = index.split("test").sample(200, random_state=0)  # held-out patients
    model = ScoringModel("class", checkpoint)
    scores = []
    for batch in predict_files([model], list(frame["path"]), workers=0):
        assert not isinstance(batch, ImageFailure), batch
        scores.append(batch.probabilities["class"])
    assert macro_auc(index.targets(frame), np.concatenate(scores)) >= 0.95
