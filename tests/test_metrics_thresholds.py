"""Operating thresholds (chosen on validation, applied on test) and early lift, by hand."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics import (
    apply_threshold,
    apply_thresholds,
    choose_thresholds,
    f1_threshold,
    partial_auc,
    sensitivity_at_specificity,
    standardized_partial_auc,
    youden_threshold,
)

# threshold: TP FP -> Youden J, F1   (3 positives, 3 negatives)
#   0.9 : 1 0 -> 1/3, 2/4      0.8 : 2 0 -> 2/3, 4/5      0.4 : 2 1 -> 1/3, 4/6
#   0.35: 3 1 -> 2/3, 6/7      0.3 : 3 2 -> 1/3, 6/8      0.1 : 3 3 -> 0,   6/9
VAL_TRUE = [0, 0, 1, 0, 1, 1]
VAL_SCORE = [0.1, 0.3, 0.35, 0.4, 0.8, 0.9]


def test_youden_and_f1_thresholds_by_hand():
    # J ties at 0.8 and 0.35: the higher (more specific) threshold is kept
    assert youden_threshold(VAL_TRUE, VAL_SCORE) == 0.8
    assert f1_threshold(VAL_TRUE, VAL_SCORE) == 0.35
    assert np.isnan(youden_threshold([0, 0], [0.2, 0.4]))
    assert np.isnan(f1_threshold([0, 0], [0.2, 0.4]))


def test_apply_threshold_by_hand():
    # called positive at >= 0.5: [1, 1, 0, 0, 1] against truth [1, 0, 1, 0, 1]
    point = apply_threshold([1, 0, 1, 0, 1], [0.6, 0.7, 0.2, 0.1, 0.5], 0.5)
    assert (point.tp, point.fp, point.tn, point.fn) == (2, 1, 1, 1)
    assert point.sensitivity == pytest.approx(2 / 3)
    assert point.specificity == pytest.approx(1 / 2)
    assert point.ppv == pytest.approx(2 / 3)
    assert point.npv == pytest.approx(1 / 2)
    assert point.f1 == pytest.approx(4 / 6)
    nothing = apply_threshold([1, 0], [0.2, 0.1], 0.9)
    assert np.isnan(nothing.ppv) and nothing.sensitivity == 0.0


def test_thresholds_chosen_on_validation_are_applied_unchanged_to_test():
    labels = ["Effusion", "Nodule"]
    val_true = np.column_stack([VAL_TRUE, VAL_TRUE[::-1]])
    val_score = np.column_stack([VAL_SCORE, VAL_SCORE[::-1]])
    chosen = choose_thresholds(val_true, val_score, labels)
    assert chosen == {
        "Effusion": {"youden": 0.8, "f1": 0.35},
        "Nodule": {"youden": 0.8, "f1": 0.35},
    }

    test_true = np.array([[1, 1], [1, 0], [0, 0], [0, 1]])
    test_score = np.array([[0.85, 0.5], [0.5, 0.2], [0.2, 0.9], [0.4, 0.3]])
    points = apply_thresholds(test_true, test_score, chosen, labels)
    # Effusion at 0.8: only 0.85 is called -> sensitivity 1/2, specificity 1
    assert points["Effusion"].threshold == 0.8
    assert (points["Effusion"].sensitivity, points["Effusion"].specificity) == (0.5, 1.0)
    f1_points = apply_thresholds(test_true, test_score, chosen, labels, rule="f1")
    assert f1_points["Nodule"] == apply_threshold(test_true[:, 1], test_score[:, 1], 0.35)
    # a threshold chosen on test itself would differ: the API never does that
    assert youden_threshold(test_true[:, 0], test_score[:, 0]) != 0.8

    with pytest.raises(ConfigError, match="validation"):
        apply_thresholds(test_true, test_score, {"Effusion": {"youden": 0.5}}, labels)
    with pytest.raises(ConfigError, match="rule"):
        apply_thresholds(test_true, test_score, chosen, labels, rule="accuracy")


# 4 positives and 10 negatives, sorted by score: P N P N N P N N N N P N N N
EL_TRUE = [1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]
EL_SCORE = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.1]


def test_sensitivity_at_specificity_by_hand():
    # 90% of 10 negatives allows 1 false positive: down to 0.85, 2 of 4 positives found
    assert sensitivity_at_specificity(EL_TRUE, EL_SCORE, 0.90) == 0.5
    # 95% allows none: only 0.95, 1 of 4
    assert sensitivity_at_specificity(EL_TRUE, EL_SCORE, 0.95) == 0.25
    assert sensitivity_at_specificity(EL_TRUE, EL_SCORE, 0.0) == 1.0
    assert np.isnan(sensitivity_at_specificity([1, 1], [0.1, 0.2], 0.9))


def test_partial_auc_by_hand_and_mcclish_against_sklearn():
    # ROC up to FPR 0.1: (0, 0) -> (0, 0.25) -> (0.1, 0.25) -> (0.1, 0.5): area 0.1 x 0.25
    assert partial_auc(EL_TRUE, EL_SCORE, 0.1) == pytest.approx(0.025)
    # McClish: 0.5 (1 + (0.025 - 0.005) / (0.1 - 0.005))
    expected = 0.5 * (1 + 0.020 / 0.095)
    assert standardized_partial_auc(EL_TRUE, EL_SCORE, 0.1) == pytest.approx(expected)
    assert expected == pytest.approx(roc_auc_score(EL_TRUE, EL_SCORE, max_fpr=0.1))

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)
    s = np.round(rng.random(400) + 0.5 * y, 2)
    for max_fpr in (0.05, 0.1, 0.37):
        assert standardized_partial_auc(y, s, max_fpr) == pytest.approx(
            roc_auc_score(y, s, max_fpr=max_fpr), abs=1e-12
        )
    # the full range gives the ordinary AUC
    assert partial_auc(y, s, 1.0) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_perfect_and_chance_partial_auc():
    y = [0] * 10 + [1] * 10
    assert partial_auc(y, np.arange(20), 0.1) == pytest.approx(0.1)
    assert standardized_partial_auc(y, np.arange(20), 0.1) == pytest.approx(1.0)
    assert standardized_partial_auc(y, np.ones(20), 0.1) == pytest.approx(0.5)  # all tied
