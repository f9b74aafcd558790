"""The shipped real-film zoo (assets/zoo-pneumonia): every figure ZOO.json records is recomputed
from the shipped files (scikit-learn's AUC and DeLong's test written out here, from each model's
predictions.csv), the shipped checkpoints give those predictions again on the films, their
out-of-distribution warning is measured again, and no film is shipped.

The tests hold for whatever models ZOO.json lists (its figures), not for today's by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from cxr_attention.app.inference import LoadedModel, analyse_view
from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.data.sources import open_dataset, recorded_options
from cxr_attention.core.explain import explain
from cxr_attention.core.inference import ImageFailure, ScoringModel, predict_files
from cxr_attention.core.models.checkpoint import Checkpoint, load_checkpoint
from cxr_attention.core.ood_probes import (
    PROBE_SEED,
    PROBE_SIZE,
    TRUST,
    flag_shares,
    flag_shares_of,
    not_a_chest,
)
from cxr_attention.train.zoos.install import FILMS_EVALUATION as EVALUATION
from cxr_attention.train.zoos.recipe import FilmsRecipe
from cxr_attention.train.zoos.registry import zoo_named

PNEUMONIA = zoo_named("pneumonia")
REAL_ZOO_DIR = PNEUMONIA.folder
PHANTOM_ZOO_DIR = zoo_named("phantom").folder
SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata-pneumonia"
ZOO = json.loads((REAL_ZOO_DIR / "ZOO.json").read_text())
NAMES = list(ZOO["figures"])
LABEL = "Pneumonia"


def predictions(name: str) -> pd.DataFrame:
    return pd.read_csv(REAL_ZOO_DIR / name / "predictions.csv")


def test_zoo_json_records_the_recipe_and_ships_each_of_its_models():
    assert ZOO["command"] == PNEUMONIA.command
    assert ZOO["recipe"]["title"] == PNEUMONIA.recipe.title
    assert "no pointing game" in ZOO["lesion_outlines"]
    recipe = FilmsRecipe.from_json(ZOO["recipe"])  # the recorded recipe names the models it trained
    assert recipe.model_names() == NAMES
    for name in NAMES:
        for filename in ("checkpoint.pt", "config.json", "history.csv", *EVALUATION):
            assert (REAL_ZOO_DIR / name / filename).is_file(), f"{name}/{filename}"
    # every attention model (extras included) is compared (DeLong, paired) with its backbone's
    # baseline
    models = {model.name: model for model in recipe.models()}
    with_attention = [name for name in NAMES if models[name].kind is not None]
    assert with_attention and sorted(ZOO["attention_effect"]) == sorted(with_attention)
    for name in with_attention:
        assert ZOO["attention_effect"][name]["against"] == models[name].backbone


@pytest.mark.parametrize("name", NAMES)
def test_the_recorded_figures_are_those_of_the_shipped_predictions(name):
    """AUC (scikit-learn), films, patients and the held-out share flagged, from predictions.csv;
    then the floors the zoo promises (held-out patients, AUC)."""
    figures = ZOO["figures"][name]
    table = predictions(name)
    metrics = json.loads((REAL_ZOO_DIR / name / "metrics.json").read_text())
    assert metrics["labels"] == [LABEL] and set(table["split"]) == {"test"}
    auc = roc_auc_score(table[f"y_true_{LABEL}"], table[f"y_score_{LABEL}"])
    assert figures["test_auc"] == pytest.approx(auc, abs=1e-12)
    assert metrics["per_class"][LABEL]["auc"] == pytest.approx(auc, abs=1e-12)
    lo, hi = figures["test_auc_ci"]
    assert lo < auc < hi
    assert figures["n_test_images"] == len(table) == metrics["n_images"]
    assert figures["n_test_patients"] == table["patient_id"].nunique()
    held_out = figures["flagged"]["held-out films"]
    assert held_out == pytest.approx(table["out_of_distribution"].mean(), abs=1e-12)
    assert not any("pointing" in key or "iobb" in key for key in figures)
    assert set(figures["blanking"]) >= {"mean_drop", "random_mean_drop", "p"}
    # floors: enough held-out patients to measure, and a model worth showing
    assert figures["n_test_patients"] > 500 and auc >= 0.95, name
    assert held_out <= 0.1, name  # films like the training films mostly pass


def delong(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> dict[str, float]:
    """DeLong, DeLong and Clarke-Pearson (1988) for two correlated AUCs, from its definition:
    structural components psi(x, y) over every positive-negative pair."""
    positive, negative = y == 1, y == 0
    components = []
    for score in (score_a, score_b):
        x, z = score[positive][:, None], score[negative][None, :]
        psi = (x > z) + 0.5 * (x == z)
        components.append((psi.mean(axis=1), psi.mean(axis=0)))  # V10 (m,), V01 (n,)
    v10 = np.stack([c[0] for c in components])
    v01 = np.stack([c[1] for c in components])
    s10, s01 = np.cov(v10), np.cov(v01)
    contrast = np.array([1.0, -1.0])
    variance = (
        contrast @ s10 @ contrast / positive.sum() + contrast @ s01 @ contrast / negative.sum()
    )
    auc_a, auc_b = v10.mean(axis=1)
    se = float(np.sqrt(variance))
    z = (auc_a - auc_b) / se
    return {
        "n_positive": int(positive.sum()),
        "n_negative": int(negative.sum()),
        "auc_a": auc_a,
        "auc_b": auc_b,
        "difference": auc_a - auc_b,
        "se": se,
        "z": z,
        "p_value": float(2 * norm.sf(abs(z))),
        "ci_low": auc_a - auc_b - norm.ppf(0.975) * se,
        "ci_high": auc_a - auc_b + norm.ppf(0.975) * se,
    }


def test_the_attention_effect_is_delongs_test_on_the_shipped_predictions():
    for name, effect in ZOO["attention_effect"].items():
        ours = predictions(name).set_index("image_id")
        baseline = predictions(effect["against"]).set_index("image_id")
        assert sorted(ours.index) == sorted(baseline.index)  # the same held-out films
        baseline = baseline.loc[ours.index]
        assert (ours[f"y_true_{LABEL}"] == baseline[f"y_true_{LABEL}"]).all()
        expected = delong(
            ours[f"y_true_{LABEL}"].to_numpy(),
            ours[f"y_score_{LABEL}"].to_numpy(),
            baseline[f"y_score_{LABEL}"].to_numpy(),
        )
        recorded = effect[LABEL]
        for key, value in expected.items():
            assert recorded[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, key)
        assert recorded["p_holm"] == pytest.approx(recorded["p_value"])  # one label: no family


@pytest.fixture(scope="module")
def checkpoints() -> dict[str, Checkpoint]:
    """Every shipped model, loaded once for the tests that only read or score with it."""
    return {name: load_checkpoint(REAL_ZOO_DIR / name / "checkpoint.pt") for name in NAMES}


def test_no_film_is_shipped_and_every_model_knows_what_it_learnt(checkpoints):
    for name in NAMES:
        checkpoint = checkpoints[name]
        assert checkpoint.labels == (LABEL,)
        data = checkpoint.training["data"]
        assert data["source"] == "class_folders" and "Guangzhou" in data["title"]
        with np.load(REAL_ZOO_DIR / name / "timeline" / "images.npz") as timeline:
            assert "views" not in timeline.files  # which films, never the films
            assert len(timeline["image_ids"]) == 6
    images = [p for p in REAL_ZOO_DIR.rglob("*") if p.suffix.lower() in (".png", ".jpeg", ".jpg")]
    assert not images


def test_each_model_reads_its_films_through_the_lung_prior_it_learnt(checkpoints):
    """The zoo's models learnt their films masked to the lung fields of the shipped lung model,
    and the teaching model the whole film; each checkpoint says so, so that predict, the study
    and the app apply the same prior (the 60-film check below scores through it)."""
    from cxr_attention.core.lungs.shipped import shipped_lung_model

    identity = shipped_lung_model().identity
    priors = {}
    for name in NAMES:
        config = checkpoints[name].config
        priors[name] = config.lung_prior
        assert config.lung_model == (identity if config.lung_prior != "none" else "")
    teaching = [m.name for m in PNEUMONIA.recipe.models() if m.options.get("lung_prior") == "none"]
    assert teaching and all(priors[name] == "none" for name in teaching)
    assert all(priors[name] == "mask" for name in NAMES if name not in teaching)


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict[str, list[Path]]:
    """The shipped probe of images that are not chest films (the same five as trust.json's) and a
    smaller phantom probe than trust.json's (its 1,000-film phantom takes tens of seconds to draw):
    300 films, the test split kept (about 50), the probe's seed and size."""
    from cxr_attention.core.data.phantom import generate_phantom

    root = tmp_path_factory.mktemp("probes")
    generate_phantom(
        root / "phantom", 300, PROBE_SIZE, seed=PROBE_SEED, workers=1, splits=("test",)
    )
    return {
        "phantom films": sorted((root / "phantom" / "images").glob("*.png")),
        "not a chest film": not_a_chest(root / "not-a-chest"),
    }


@pytest.fixture(scope="module")
def flagged_again(probes) -> dict[str, dict]:
    """Every shipped model's `flag_shares` on the probes, in one pass (`flag_shares_of`): each
    film's lung fields are found once for the six models that read them (finding them took three
    quarters of the time when each model found them again), and the whole-film model scores every
    image, the five that are not chest films included."""
    return flag_shares_of({name: REAL_ZOO_DIR / name / "checkpoint.pt" for name in NAMES}, probes)


def test_the_models_at_once_flag_what_each_flags_alone(checkpoints, probes, flagged_again):
    """A model with a lung prior and the whole-film one, each alone, give beside the others the
    same figures on the images that are not chest films: the first refuses those without
    plausible lung fields, the other scores all five (refused by none of the models beside it)."""
    prior = next(name for name in NAMES if checkpoints[name].config.lung_prior != "none")
    whole = next(name for name in NAMES if checkpoints[name].config.lung_prior == "none")
    images = {"not a chest film": probes["not a chest film"]}
    for name in (prior, whole):
        alone = flag_shares(REAL_ZOO_DIR / name / "checkpoint.pt", images)
        assert alone["not a chest film"] == flagged_again[name]["not a chest film"], name
    assert flagged_again[prior]["not a chest film"]["refused"] > 0
    assert flagged_again[whole]["not a chest film"]["n"] == len(images["not a chest film"])


@pytest.mark.parametrize("name", NAMES)
def test_the_real_models_flag_phantom_films_and_images_that_are_not_chest_films(
    name, probes, flagged_again
):
    """trust.json measured again: the five images that are not chest films exactly (the same
    images); the phantom films on a smaller draw, so within three standard errors of the
    difference between two shares (binomial) of the rate trust.json records."""
    trust = json.loads((REAL_ZOO_DIR / name / TRUST).read_text())
    figures = ZOO["figures"][name]["flagged"]
    for probe in ("phantom films", "not a chest film"):
        assert figures[probe] == trust[probe]["share"]
    again = flagged_again[name]
    assert again["not a chest film"]["flagged"] == trust["not a chest film"]["flagged"]
    # every image that is not a chest film is caught: flagged, or (a model that reads the lung
    # fields) refused for having no plausible lung fields, never scored as a film
    shown = again["not a chest film"]
    assert shown["flagged"] + shown["refused"] == len(probes["not a chest film"]), shown
    recorded, fresh = trust["phantom films"], again["phantom films"]
    rate = (recorded["flagged"] + fresh["flagged"]) / (recorded["n"] + fresh["n"])
    se = np.sqrt(rate * (1 - rate) * (1 / recorded["n"] + 1 / fresh["n"]))
    assert fresh["n"] >= 40
    assert abs(fresh["share"] - recorded["share"]) <= 3 * se, (fresh, recorded)
    # floor: a real-film model calls a good share of phantom films unlike its own. Those that see
    # only the lung fields call fewer (0.30-0.45: the phantom's lungs are drawn as lungs) than
    # the one that sees the whole film (0.68); none calls them all familiar.
    assert recorded["share"] >= 0.2, trust


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata-pneumonia is absent")
def test_the_shipped_models_give_their_predictions_again_on_children_they_never_saw(
    checkpoints,
):
    """On 60 held-out films, `predict`'s path gives each model's predictions.csv scores again
    (to 1e-4: another CPU sums in another order; 3e-7 measured), and they read pneumonia (AUC
    0.96-0.99 on these 60 in predictions.csv; 0.95-0.96 on 120, the test's earlier draw)."""
    first = checkpoints[NAMES[0]]
    index = open_dataset(REAL, recorded_options(first.training["data"], first.labels))
    frame = index.split("test").sample(60, random_state=0)  # held-out patients
    models = [ScoringModel(name, checkpoint) for name, checkpoint in checkpoints.items()]
    scores: dict[str, list[np.ndarray]] = {name: [] for name in NAMES}
    for batch in predict_files(models, list(frame["path"]), workers=0):
        assert not isinstance(batch, ImageFailure), batch
        for name in NAMES:
            scores[name].append(batch.probabilities[name][:, 0])
    truth = index.targets(frame)[:, 0]
    for name in NAMES:
        ours = np.concatenate(scores[name])
        stored = predictions(name).set_index("image_id").loc[frame["image_id"]]
        np.testing.assert_allclose(ours, stored[f"y_score_{LABEL}"], rtol=0, atol=1e-4)
        assert (stored[f"y_true_{LABEL}"].to_numpy() == truth).all()
        assert roc_auc_score(truth, ours) >= 0.95, name


def test_the_comparison_report_of_the_real_zoo_holds_its_maps_to_the_lungs(tmp_path):
    """`compare` on films without lesion outlines: no pointing figures, every studied map held
    to the lung fields, each row the study's own figure."""
    from cxr_attention.train.cli import main

    runs = [REAL_ZOO_DIR / name for name in NAMES]
    assert main(["compare", *map(str, runs), "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "Inside the lungs" in report
    for name in NAMES:
        study = json.loads((REAL_ZOO_DIR / name / "study.json").read_text())
        for key, m in study["maps"].items():
            peak = m["lungs"]["map"]["peak_inside"]
            assert f"| {name} | {key}" in report and f"| {peak:.3f} |" in report


def test_the_app_shows_a_baselines_gradcam_where_the_lung_term_held_it(checkpoints):
    """A linear head trained with the lung term had its final-stage Grad-CAM held inside the lungs,
    and ZOO.json's in-lung figures measure that map: the app shows that one (4 x 4 at 128 px),
    not the finer stage-3 map it shows a model trained without the term (the phantom zoo's)."""
    view = model_view(load_radiograph(SAMPLES / "phantom_normal.png"), 128)
    held = [name for name in NAMES if checkpoints[name].lung_weight > 0]
    linear = [name for name in held if not checkpoints[name].model.class_specific]
    assert linear, "the zoo ships a baseline trained with the lung term"
    for name in linear:
        checkpoint = checkpoints[name]
        shown = analyse_view(LoadedModel(checkpoint), view, LABEL, "gradcam").explanation
        scored = json.loads((REAL_ZOO_DIR / name / "localization_lungs.json").read_text())
        assert scored["method"] == "gradcam" and shown.stage == scored["map_stage"], name
        assert shown.map_size == (4, 4), name
        # the final stage's Grad-CAM, as `explain` gives it by default
        held_map = explain(
            checkpoint.model, config_input(view[None], checkpoint.config), LABEL, "gradcam"
        )
        assert held_map.stage == shown.stage
        np.testing.assert_allclose(shown.heat, held_map.map(0), atol=1e-5)
    free = load_checkpoint(PHANTOM_ZOO_DIR / "mobilenetv2_100" / "checkpoint.pt")
    assert free.lung_weight == 0 and free.config.image_size == 128
    shown = analyse_view(LoadedModel(free), view, free.labels[0], "gradcam").explanation
    assert (shown.stage, shown.map_size) == ("stage3", (8, 8))
