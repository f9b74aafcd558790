"""Subgroups, metrics.json from a predictions table, and the comparison of two runs."""

import json

import numpy as np
import pandas as pd
import pytest

from cxr_attention.core.errors import ConfigError, RunError
from cxr_attention.core.metrics import (
    age_bands,
    apply_threshold,
    brier_score,
    choose_thresholds,
    compare_runs_bootstrap,
    compare_runs_delong,
    delong_test,
    holm_adjust,
    predictions_arrays,
    roc_auc,
    standardized_partial_auc,
    subgroup_auc,
    summarize_predictions,
)
from cxr_attention.core.runs import write_json

LABELS = ["Effusion", "Nodule", "Hernia"]


def _predictions(seed=0, n=120, labels=LABELS):
    rng = np.random.default_rng(seed)
    patients = rng.integers(1, 31, n)
    frame = pd.DataFrame(
        {
            "image_id": [f"{i:08d}_000.png" for i in range(n)],
            "patient_id": patients,
            "sex": np.where(patients % 2 == 0, "M", "F"),
            "age": rng.uniform(5, 95, n).round(),
            "view": rng.choice(["PA", "AP"], n),
            "split": "test",
        }
    )
    y = (rng.random((n, len(labels))) < 0.3).astype(int)
    y[:, -1] = 0  # Hernia absent from this split: its AUC is undefined
    s = 1 / (1 + np.exp(-(rng.normal(size=y.shape) + 1.5 * y - 1)))
    for k, label in enumerate(labels):
        frame[f"y_true_{label}"] = y[:, k]
    for k, label in enumerate(labels):
        frame[f"y_score_{label}"] = s[:, k]
    return frame


def test_age_bands():
    bands = age_bands([5, 20, 39.9, 40, 79, 80, 101, np.nan])
    assert list(bands) == ["<20", "20-39", "20-39", "40-59", "60-79", "80+", "80+", "unknown"]


def test_subgroup_auc_by_hand():
    y = np.array([[1], [0], [1], [0], [1], [1]])
    s = np.array([[0.9], [0.2], [0.4], [0.6], [0.3], [0.8]])
    table = subgroup_auc(y, s, ["M", "M", "M", "M", "F", "F"], order=["M", "F"])
    # M: positives 0.9, 0.4 against negatives 0.2, 0.6 -> 3 of 4 pairs; F: positives only
    assert list(table) == ["M", "F"]
    assert table["M"] == {"n": 4, "micro_auc": 0.75, "macro_auc": 0.75}
    assert table["F"]["n"] == 2 and np.isnan(table["F"]["micro_auc"])


def test_summary_follows_the_metrics_json_schema(tmp_path):
    frame = _predictions()
    y, s = predictions_arrays(frame, LABELS)
    thresholds = choose_thresholds(*predictions_arrays(_predictions(seed=1), LABELS), LABELS)
    summary = summarize_predictions(frame, LABELS, thresholds, n_resamples=200, seed=3)

    assert set(summary) == {
        "split", "n_images", "n_patients", "labels", "micro_auc", "micro_auc_ci", "macro_auc",
        "macro_auc_ci", "per_class", "calibration", "subgroups", "bootstrap",
    }  # fmt: skip
    assert (summary["split"], summary["n_images"]) == ("test", 120)
    assert summary["n_patients"] == frame["patient_id"].nunique()
    assert summary["labels"] == LABELS and list(summary["per_class"]) == LABELS
    assert summary["bootstrap"] == {"n_resamples": 200, "unit": "patient", "seed": 3, "level": 0.95}
    assert summary["micro_auc_ci"][0] < summary["micro_auc"] < summary["micro_auc_ci"][1]
    assert set(summary["subgroups"]) == {"sex", "age_band", "view"}
    assert set(summary["subgroups"]["sex"]) == {"M", "F"}
    assert set(summary["calibration"]) == {"brier", "ece", "reliability"}

    effusion = summary["per_class"]["Effusion"]
    assert set(effusion) == {
        "auc", "auc_ci", "n_positive", "prevalence", "pauc_fpr10", "sens_at_spec90",
        "sens_at_spec95", "threshold", "sensitivity", "specificity", "ppv", "f1", "brier", "ece",
    }  # fmt: skip
    assert effusion["auc"] == roc_auc(y[:, 0], s[:, 0])
    assert effusion["pauc_fpr10"] == standardized_partial_auc(y[:, 0], s[:, 0], 0.1)
    assert effusion["n_positive"] == y[:, 0].sum()
    assert effusion["threshold"] == thresholds["Effusion"]
    point = apply_threshold(y[:, 0], s[:, 0], thresholds["Effusion"]["youden"])
    assert (effusion["sensitivity"], effusion["ppv"]) == (point.sensitivity, point.ppv)
    assert effusion["brier"] == brier_score(y[:, 0], s[:, 0])
    assert summary["per_class"]["Hernia"]["n_positive"] == 0
    assert np.isnan(summary["per_class"]["Hernia"]["auc"])
    assert summary["macro_auc"] == pytest.approx(
        np.mean([effusion["auc"], roc_auc(y[:, 1], s[:, 1])])
    )

    # NaN becomes null in the written file, which strict JSON readers accept
    write_json(tmp_path / "metrics.json", summary)
    written = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=pytest.fail)
    assert written["per_class"]["Hernia"]["auc"] is None
    assert written["per_class"]["Hernia"]["auc_ci"] == [None, None]


def test_summary_without_thresholds_never_chooses_them_on_the_split():
    summary = summarize_predictions(_predictions(), LABELS, thresholds=None, n_resamples=0)
    nodule = summary["per_class"]["Nodule"]
    assert np.isnan(nodule["threshold"]["youden"]) and np.isnan(nodule["sensitivity"])
    assert np.isnan(summary["micro_auc_ci"]).all()  # 0 resamples: no interval


def test_summary_refuses_tables_that_do_not_fit():
    frame = _predictions()
    with pytest.raises(ConfigError, match="labels do not match"):
        summarize_predictions(frame, ["Nodule", "Effusion", "Hernia"], n_resamples=0)
    with pytest.raises(RunError, match="y_true_Nodule"):
        summarize_predictions(frame.drop(columns="y_true_Nodule"), LABELS, n_resamples=0)
    with pytest.raises(ConfigError, match="validation"):
        summarize_predictions(frame, LABELS, {"Effusion": {"youden": 0.5, "f1": 0.5}})


def test_compare_runs_aligns_on_image_id_and_matches_delong():
    a = _predictions()
    rng = np.random.default_rng(9)
    b = a.copy()
    for label in LABELS:
        b[f"y_score_{label}"] = rng.random(len(b))  # an uninformative model
    b = b.sample(frac=1.0, random_state=0)  # rows in another order

    table = compare_runs_delong(a, b, LABELS)
    y, sa = predictions_arrays(a, LABELS)
    _, sb = predictions_arrays(b.set_index("image_id").loc[a["image_id"]].reset_index(), LABELS)
    for k, label in enumerate(LABELS[:2]):
        expected = delong_test(y[:, k], sa[:, k], sb[:, k])
        assert table.loc[label, "difference"] == pytest.approx(expected.difference, abs=1e-15)
        assert table.loc[label, "p_value"] == pytest.approx(expected.p_value, abs=1e-15)
    np.testing.assert_allclose(table["p_holm"], holm_adjust(table["p_value"]))
    assert np.isnan(table.loc["Hernia", "p_value"])

    paired = compare_runs_bootstrap(a, b, LABELS, n_resamples=200, seed=0)
    micro = paired["micro"]
    assert micro["difference"] == pytest.approx(micro["auc_a"] - micro["auc_b"])
    assert micro["ci"][0] < micro["difference"] < micro["ci"][1]


def test_compare_runs_refuses_runs_that_do_not_line_up():
    a = _predictions()
    with pytest.raises(RunError, match="different images"):
        compare_runs_delong(a, a.iloc[1:], LABELS)
    relabelled = a.copy()
    relabelled["y_true_Effusion"] = 1 - relabelled["y_true_Effusion"]
    with pytest.raises(RunError, match="ground truth"):
        compare_runs_delong(a, relabelled, LABELS)
    other_labels = _predictions(labels=["Effusion", "Mass", "Hernia"])
    with pytest.raises(ConfigError, match="labels do not match"):
        compare_runs_delong(a, other_labels, LABELS)
