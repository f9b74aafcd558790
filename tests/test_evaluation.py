"""`evaluate`: predictions.csv and metrics.json from a run's checkpoint over a split.

The dataset is a tiny folder in ChestX-ray14 layout (48 px PNGs, a few dozen images) and the model
a freshly built MobileNetV2 at 32 px: evaluation does not care whether the model learned, only that
what it writes is exactly what the model scores and what `core.metrics` computes from them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from cxr_attention.core.errors import DatasetError, RunError
from cxr_attention.core.labels import ALL14, PAPER13
from cxr_attention.core.metrics import choose_thresholds, macro_auc, micro_auc, per_class_auc
from cxr_attention.core.models.checkpoint import load_checkpoint, save_checkpoint
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig

DATA_ENTRY_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
)
# A few findings carry a visible blob (brighter disc at a fixed place) so that scores can carry
# signal when a test wants it; the rest are noise.
BLOB_AT = {"Effusion": (0.3, 0.7), "Nodule": (0.7, 0.3), "Cardiomegaly": (0.5, 0.6)}


def make_dataset(
    root: Path,
    n_patients: int = 24,
    images_per_patient: int = 2,
    size: int = 48,
    seed: int = 0,
    test_patients: int = 8,
) -> Path:
    """A ChestX-ray14-layout folder: images/, Data_Entry_2017_v2020.csv, train_val/test lists.

    Patients 1..test_patients are the test split; findings are drawn with prevalence ~0.3-0.5 so
    every label has positives and negatives in every split.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    rows, train_val, test = [], [], []
    yy, xx = np.mgrid[0:size, 0:size] / size
    for patient in range(1, n_patients + 1):
        for k in range(images_per_patient):
            name = f"{patient:08d}_{k:03d}.png"
            findings = [label for label in ALL14 if rng.random() < 0.35]
            image = 0.35 + 0.1 * rng.standard_normal((size, size))
            for label, (cx, cy) in BLOB_AT.items():
                if label in findings:
                    image += 0.4 * (((xx - cx) ** 2 + (yy - cy) ** 2) < 0.01)
            pixels = np.clip(image * 255, 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / "images" / name), pixels)
            labels = "|".join(findings) or "No Finding"
            view = "PA" if rng.random() < 0.6 else "AP"
            sex = "M" if patient % 2 else "F"
            age = 20 + (patient * 7) % 60
            rows.append(
                f"{name},{labels},{k},{patient},{age},{sex},{view},{size},{size},0.14,0.14\n"
            )
            (test if patient <= test_patients else train_val).append(name)
    (root / "Data_Entry_2017_v2020.csv").write_text(DATA_ENTRY_HEADER + "".join(rows))
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return root


def make_run(
    run: Path,
    data: Path,
    backbone: str = "mobilenetv2_100",
    attention: bool = False,
    labels: tuple[str, ...] = ALL14,
    thresholds: dict | None = None,
    seed: int = 0,
    image_size: int = 32,
) -> Path:
    """A run folder holding a freshly built (untrained) checkpoint that records `data`."""
    from cxr_attention.core.data.sources import open_dataset

    fingerprint = open_dataset(data).fingerprint if data.is_dir() else "gone"
    torch.manual_seed(seed)
    config = ModelConfig(backbone, labels, attention=attention, image_size=image_size)
    model = AttentionClassifier(config).eval()
    if thresholds is None:
        thresholds = {
            label: {"youden": 0.5 + 0.01 * i, "f1": 0.4} for i, label in enumerate(labels)
        }
    training = {
        "epochs": 1,
        "best_epoch": 1,
        "best_val_macro_auc": 0.5,
        "data": {
            "source": "chestxray14",
            "root": str(data),
            "fingerprint": fingerprint,
            "label_set": "all14" if labels == ALL14 else "paper13",
            "views": ["PA", "AP"],
            "split": {"method": "official", "seed": 0, "val_fraction": 0.25},
        },
        "pretrained": None,
        "thresholds": thresholds,
        "seed": seed,
    }
    save_checkpoint(run / "checkpoint.pt", model, training)
    return run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "cxr14")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, dataset):
    from cxr_attention.core.evaluation import evaluate_run

    run = make_run(tmp_path_factory.mktemp("runs") / "mobilenetv2_100", dataset)
    metrics = evaluate_run(run, n_resamples=50, progress=False, num_workers=0)
    return run, metrics


def test_predictions_have_the_documented_columns_and_one_row_per_test_image(evaluated, dataset):
    from cxr_attention.core.data.sources import open_dataset

    run, _ = evaluated
    predictions = pd.read_csv(run / "predictions.csv")
    expected = ["image_id", "patient_id", "sex", "age", "view", "split"]
    expected += [f"y_true_{label}" for label in ALL14] + [f"y_score_{label}" for label in ALL14]
    assert list(predictions.columns) == expected
    test = open_dataset(dataset, val_fraction=0.25).split("test")
    assert sorted(predictions["image_id"]) == sorted(test["image_id"])
    assert len(predictions) == 16 and set(predictions["split"]) == {"test"}
    scores = predictions[[f"y_score_{label}" for label in ALL14]].to_numpy()
    assert ((scores > 0) & (scores < 1)).all()  # sigmoid probabilities
    truth = test.set_index("image_id").loc[predictions["image_id"], list(ALL14)].to_numpy()
    np.testing.assert_array_equal(
        predictions[[f"y_true_{label}" for label in ALL14]].to_numpy(), truth
    )


def test_scores_are_the_models_own_probabilities(evaluated, dataset):
    """The evaluation path (loader + cache + config_input) gives what the model gives by hand."""
    from cxr_attention.core.data.preprocess import config_input, model_view
    from cxr_attention.core.data.radiograph import load_radiograph

    run, _ = evaluated
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    predictions = pd.read_csv(run / "predictions.csv")
    row = predictions.iloc[3]
    pixels = load_radiograph(dataset / "images" / row["image_id"]).pixels
    view = torch.from_numpy(model_view(pixels, 32))[None]
    with torch.no_grad():
        expected = torch.sigmoid(checkpoint.model(config_input(view, checkpoint.config))).numpy()[0]
    got = row[[f"y_score_{label}" for label in ALL14]].to_numpy(dtype=float)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_metrics_json_schema_and_aucs_recomputed_from_predictions(evaluated, dataset):
    run, returned = evaluated
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"] == "mobilenetv2_100" and metrics["split"] == "test"
    assert metrics["n_images"] == 16 and metrics["n_patients"] == 8
    assert metrics["labels"] == list(ALL14)
    assert metrics["data"]["source"] == "chestxray14"
    assert metrics["data"]["root"] == str(dataset.resolve())
    assert metrics["model"] == {
        "backbone": "mobilenetv2_100",
        "attention": False,
        "attention_kind": None,
        "attention_stages": [],
        "output_stride": 32,
        "image_size": 32,
        "pretrained": None,
    }
    assert metrics["bootstrap"] == {"n_resamples": 50, "unit": "patient", "seed": 0, "level": 0.95}
    for key in ("calibration", "subgroups", "per_class", "micro_auc_ci", "macro_auc_ci"):
        assert key in metrics
    entry_keys = {
        "auc", "auc_ci", "n_positive", "prevalence", "pauc_fpr10", "sens_at_spec90",
        "sens_at_spec95", "threshold", "sensitivity", "specificity", "ppv", "f1", "brier", "ece",
    }  # fmt: skip
    assert set(metrics["per_class"]) == set(ALL14)
    assert all(entry_keys <= set(v) for v in metrics["per_class"].values())

    predictions = pd.read_csv(run / "predictions.csv")
    y_true = predictions[[f"y_true_{label}" for label in ALL14]].to_numpy()
    y_score = predictions[[f"y_score_{label}" for label in ALL14]].to_numpy()
    assert metrics["micro_auc"] == pytest.approx(micro_auc(y_true, y_score), abs=1e-12)
    assert metrics["macro_auc"] == pytest.approx(macro_auc(y_true, y_score), abs=1e-12)
    per_class = per_class_auc(y_true, y_score)
    for k, label in enumerate(ALL14):
        got = metrics["per_class"][label]["auc"]
        assert (got is None and math.isnan(per_class[k])) or got == pytest.approx(per_class[k])
    lo, hi = metrics["micro_auc_ci"]
    assert lo <= metrics["micro_auc"] <= hi
    assert returned["micro_auc"] == pytest.approx(metrics["micro_auc"])


def test_thresholds_come_from_the_checkpoint_not_from_test(evaluated):
    run, metrics = evaluated
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    predictions = pd.read_csv(run / "predictions.csv")
    on_test = choose_thresholds(
        predictions[[f"y_true_{label}" for label in ALL14]].to_numpy(),
        predictions[[f"y_score_{label}" for label in ALL14]].to_numpy(),
        ALL14,
    )
    for label in ALL14:
        recorded = checkpoint.training["thresholds"][label]
        assert metrics["per_class"][label]["threshold"] == pytest.approx(recorded)
    # the recorded thresholds (0.5, 0.51, ...) are not what test would have chosen
    assert any(
        metrics["per_class"][lb]["threshold"]["youden"] != pytest.approx(on_test[lb]["youden"])
        for lb in ALL14
    )
    assert metrics["threshold_source"].startswith("checkpoint")
    # sensitivity at the recorded Youden threshold, by hand
    label = "Effusion"
    t = checkpoint.training["thresholds"][label]["youden"]
    truth = predictions[f"y_true_{label}"].to_numpy().astype(bool)
    called = predictions[f"y_score_{label}"].to_numpy() >= t
    if truth.any():
        expected = (called & truth).sum() / truth.sum()
        assert metrics["per_class"][label]["sensitivity"] == pytest.approx(expected)


def test_missing_thresholds_are_chosen_on_validation(tmp_path, dataset):
    from cxr_attention.core.data.sources import open_dataset
    from cxr_attention.core.evaluation import evaluate_run, predict_frame

    run = make_run(tmp_path / "run", dataset, thresholds={})
    metrics = evaluate_run(run, n_resamples=0, progress=False, num_workers=0)
    assert metrics["threshold_source"].startswith("validation")
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    index = open_dataset(dataset, val_fraction=0.25)
    val = index.split("val")
    scores = predict_frame(checkpoint, index, val, progress=False, num_workers=0)
    expected = choose_thresholds(index.targets(val), scores, ALL14)
    for label in ALL14:
        got = metrics["per_class"][label]["threshold"]["youden"]
        want = expected[label]["youden"]
        assert got == pytest.approx(want, nan_ok=True)
    assert all(math.isnan(v) for v in metrics["micro_auc_ci"])  # no resamples, no interval


def test_other_split_and_label_mismatch(tmp_path, dataset):
    from cxr_attention.core.evaluation import evaluate_run

    run = make_run(tmp_path / "run", dataset)
    metrics = evaluate_run(run, split="val", n_resamples=0, progress=False, num_workers=0)
    assert metrics["split"] == "val"
    assert set(pd.read_csv(run / "predictions.csv")["split"]) == {"val"}

    paper = make_run(tmp_path / "paper13", dataset, labels=PAPER13)
    metrics = evaluate_run(paper, n_resamples=0, progress=False, num_workers=0)
    assert metrics["labels"] == list(PAPER13)
    assert "y_score_Hernia" not in pd.read_csv(paper / "predictions.csv").columns


def test_clear_errors(tmp_path, dataset, capsys):
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.train.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunError, match="checkpoint.pt is missing"):
        evaluate_run(empty)
    with pytest.raises(RunError, match="not found"):
        evaluate_run(tmp_path / "nowhere")

    gone = make_run(tmp_path / "gone", tmp_path / "deleted-data")
    with pytest.raises(DatasetError, match="pass --data"):
        evaluate_run(gone, progress=False)

    # a checkpoint with a label the data folder does not have
    odd = make_run(tmp_path / "odd", dataset, labels=(*ALL14[:2], "COVID-19"))
    with pytest.raises(DatasetError, match="COVID-19 not among the labels.*labels the run was"):
        evaluate_run(odd, progress=False)

    assert main(["evaluate", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint.pt is missing" in err[0]


def test_cli_prints_the_metrics_and_a_missing_run_in_one_line(tmp_path, dataset, capsys):
    from cxr_attention.train.cli import main

    run = make_run(tmp_path / "cli-run", dataset)
    assert main(["evaluate", str(run), "--n-resamples", "20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "micro-AUC" in out and "16 test images of 8 patients" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{metrics['micro_auc']:.3f}" in out
    lo, hi = metrics["micro_auc_ci"]
    assert f"[{lo:.3f}, {hi:.3f}]" in out

    assert main(["evaluate", str(run), "--n-resamples", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "micro-AUC" in out and "nan" not in out  # no resamples: no interval, not "[nan, nan]"

    # in-process: the console script's own process is tested once, in tests/test_cli.py
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "not found" in err
    assert err.startswith("cxr-attention evaluate: error: ")
