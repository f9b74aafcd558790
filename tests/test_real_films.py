"""Real films through the whole path: a short training on 1,000 of Kermany et al.'s paediatric
films learns pneumonia (held-out patients), and the run reopens, evaluates and predicts.

The network is timm's 0.1 M-parameter `test_efficientnet` (as in the phantom's training tests),
not the zoo's MobileNetV2: a quarter of the CPU time, and it learns these films as well in three
epochs (test AUC 0.965-0.978 over three draws of the 1,000 films, MobileNetV2 0.969 on the first).

Reads ../shared/realdata-pneumonia (never copied into the repository: the test links to the films
from a temporary folder) and skips cleanly where it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.ood_probes import not_a_chest
from cxr_attention.train.cli import main

REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata-pneumonia"
pytestmark = pytest.mark.skipif(
    not (REAL / "chest_xray" / "train").is_dir(), reason="../shared/realdata-pneumonia is absent"
)
N_FILMS = 1000
SIZE = 64
EPOCHS = 3
BACKBONE = "test_efficientnet"


def linked_subset(folder: Path, n: int, seed: int = 0) -> Path:
    """ROOT/CLASS/* holding links to `n` real films drawn at random (all classes in proportion)."""
    films = sorted((REAL / "chest_xray" / "train").glob("*/*.jpeg"))
    rng = np.random.default_rng(seed)
    for index in sorted(rng.choice(len(films), size=n, replace=False)):
        source = films[index]
        target = folder / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, target)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real")
    data = linked_subset(root / "pneumonia", N_FILMS)
    out = root / "run"
    # each film decoded once, as `fit` advises (it reads the cache each epoch instead of decoding
    # 800 full-size JPEGs three times); the cache lies in the temporary folder, never in shared/
    cache = ["cache", str(data), "--size", str(SIZE), "--workers", "1", "--no-progress"]
    assert main(cache) == 0
    argv = [
        "fit", "--data", str(data), "--backbone", BACKBONE, "--image-size", str(SIZE),
        "--epochs", str(EPOCHS), "--batch-size", "32", "--out", str(out), "--workers", "0",
        "--no-progress", "--patience", "0", "--min-steps", "0",  # 3 plain passes, quick
    ]  # fmt: skip
    assert main(argv) == 0
    return out


def test_a_short_real_training_learns_pneumonia_on_held_out_patients(run):
    assert main(["evaluate", str(run), "--n-resamples", "0", "--no-progress"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["labels"] == ["Pneumonia"] and metrics["split"] == "test"
    # 20 % of the patients, carved with the run's seed; none of them trained the model
    assert 150 <= metrics["n_images"] <= 260
    assert metrics["per_class"]["Pneumonia"]["auc"] >= 0.85, metrics["per_class"]["Pneumonia"]


def test_the_run_records_its_labels_split_and_what_the_reader_found(run):
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    assert checkpoint.labels == ("Pneumonia",)
    data = json.loads((run / "config.json").read_text())["data"]
    assert data["source"] == "class_folders" and data["split"]["method"] == "patient"
    assert data["split"]["seed"] == 0 and data["split"]["test_fraction"] == 0.2
    kinds = {finding["kind"] for finding in data["findings"]}
    assert {"classes", "patients", "decoded", "rgb_grey"} <= kinds
    index = open_dataset(data["root"], test_fraction=0.2, seed=0)
    train = set(index.split("train")["patient_id"])
    assert not train & set(index.split("test")["patient_id"])


def test_predict_names_the_label_and_warns_only_about_films_unlike_the_training_films(
    run, tmp_path, capsys
):
    """Films of patients the run never saw, from the same collection, pass the out-of-distribution
    warning (the threshold lets 97.5% of validation films through; of 40 held-out films at most 6
    flagged, 2 or 3 when measured over three draws); images that are not chest films are flagged,
    each of them (scores 1.6 to 110 times the threshold when measured)."""
    index = open_dataset(run.parent / "pneumonia", test_fraction=0.2, seed=0)
    held_out = sorted(index.split("test")["path"])[:40]
    not_chest = not_a_chest(tmp_path / "not-a-chest")
    argv = ["predict", str(run / "checkpoint.pt"), *map(str, held_out + not_chest), "--json"]
    assert main(argv) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [str(p) for p in held_out + not_chest]
    assert all(list(r["probabilities"]) == ["Pneumonia"] for r in results)
    flagged = [r["out_of_distribution"]["flagged"] for r in results]
    assert sum(flagged[: len(held_out)]) <= 6, results[: len(held_out)]
    assert all(flagged[len(held_out) :]), results[len(held_out) :]


def test_blanking_on_films_without_outlines_measures_no_lesion_figure(run):
    from cxr_attention.core.study.open_blanking import BLANKING, run_open_blanking

    report = run_open_blanking(run, limit=12)
    assert json.loads((run / BLANKING).read_text())["data"]["truth"] == "none"
    assert "no lesion outlines" in report["lesion_outlines"]
    (grad_cam,) = report["maps"].values()  # a baseline: Grad-CAM alone, and no own map
    assert report["own_map"] is None and "localization" not in grad_cam
    faith = grad_cam["faithfulness"]
    assert faith["n"] == 12 and faith["per_class"]["Pneumonia"]["n"] == 12
    assert faith["region_share"] == pytest.approx(0.125, abs=1 / 64**2)
    assert 0 <= faith["mean_probability"] <= 1
