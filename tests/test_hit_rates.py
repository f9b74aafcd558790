"""The Explore page's lesson in numbers: each map's hit rate across the test films, and the
default sample chosen by a rule (the median class-map hit rate), from the shipped zoo's study."""

from __future__ import annotations

import json
from pathlib import Path

from cxr_attention.app.hit_rates import class_map_rates, hit_rate, median_sample
from cxr_attention.app.images import Sample
from cxr_attention.app.registry import scan_runs
from cxr_attention.train.zoos.registry import PHANTOM_ZOO

ZOO_DIR = PHANTOM_ZOO.folder


def sample(name: str, *labels: str) -> Sample:
    return Sample(file=Path(name), labels=labels)


def test_the_default_sample_is_the_one_at_the_median_rate():
    samples = [
        sample("normal.png"),
        sample("nodule.png", "Nodule"),
        sample("mass.png", "Mass"),
        sample("heart.png", "Cardiomegaly"),
        sample("two.png", "Mass", "Effusion"),  # two findings: no one right answer, not a candidate
    ]
    rates = {"Nodule": 0.2, "Mass": 0.9, "Cardiomegaly": 0.5, "Effusion": 0.7}
    chosen, words = median_sample(samples, rates)
    assert chosen.name == "heart.png" and "(Cardiomegaly)" in words and "50%" in words
    # an even count takes the lower median; no rate at all: no choice
    assert median_sample(samples[:3], rates)[0].name == "nodule.png"
    assert median_sample(samples, {}) == (None, "")


def test_hit_rates_are_the_studys_pointing_game_across_the_test_films():
    registry = scan_runs(ZOO_DIR)
    entry = registry.best("mobilenetv2_100", "class")
    study = json.loads((ZOO_DIR / entry.name / "study.json").read_text())
    own = study["maps"][study["own_map"]]
    rate = hit_rate(entry, "Mass")
    assert rate.share == own["localization"]["per_class"]["Mass"]["pointing_game"]
    assert rate.n == own["localization"]["per_class"]["Mass"]["n_boxes"]
    assert rate.random == own["random"]["per_class"]["Mass"]["pointing_game"]
    cam = hit_rate(entry, "Mass", own=False)
    gradcam = next(v for k, v in study["maps"].items() if k.startswith("gradcam:"))
    assert cam.share == gradcam["localization"]["per_class"]["Mass"]["pointing_game"]
    rates = class_map_rates(registry)  # the first class-specific backbone's, as Explore shows
    first = registry.best(registry.class_specific_backbones()[0], "class")
    assert rates["Mass"] == hit_rate(first, "Mass").share and "No Finding" not in rates
    # a baseline has no map of its own
    assert hit_rate(registry.best("mobilenetv2_100", None), "Mass") is None


def test_a_rate_is_the_shown_maps_or_names_the_map_the_study_scored():
    """Explore draws the gate and Grad-CAM at stage 3 (8 x 8); the study scored the gate at stages
    3 and 4 and Grad-CAM at stage 4 only: the line under a map must not pass another map's rate off
    as its own."""
    entry = scan_runs(ZOO_DIR).best("efficientnet_b0", "spatial")
    study = json.loads((ZOO_DIR / entry.name / "study.json").read_text())
    gate = hit_rate(entry, "Mass", stage="stage3")
    stage3 = study["maps"]["attention:stage3"]["localization"]["per_class"]["Mass"]
    assert gate.share == stage3["pointing_game"] and "this map's peak" in gate.words("Mass")
    cam = hit_rate(entry, "Mass", own=False, stage="stage3")
    stage4 = study["maps"]["gradcam:stage4"]["localization"]["per_class"]["Mass"]
    assert cam.share == stage4["pointing_game"]
    words = cam.words("Mass")
    assert "this model's stage4 Grad-CAM (4x4" in words and "not this stage3 map" in words
