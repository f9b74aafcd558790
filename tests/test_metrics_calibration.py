"""Brier score, expected calibration error and reliability curve, by hand."""

import numpy as np
import pytest

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics import brier_score, expected_calibration_error, reliability_curve

Y = [0, 1, 1, 0, 1]
P = [0.1, 0.9, 0.65, 0.45, 0.3]


def test_brier_by_hand():
    # squared errors 0.01, 0.01, 0.1225, 0.2025, 0.49
    assert brier_score(Y, P) == pytest.approx(0.835 / 5)
    assert brier_score([0, 1], [0.0, 1.0]) == 0.0
    # (n, L) pools every (image, label) pair
    assert brier_score([[0, 1], [1, 0]], [[0.5, 0.5], [1.0, 0.0]]) == pytest.approx(0.5 / 4)


def test_ece_by_hand_with_ten_and_two_bins():
    # ten bins: every score alone in its bin, gaps 0.1, 0.1, 0.35, 0.45, 0.7, each weight 1/5
    assert expected_calibration_error(Y, P, n_bins=10) == pytest.approx(1.7 / 5)
    # two bins: [0, 0.5) holds 0.1, 0.45, 0.3 (mean 0.85/3, 1 of 3 positive) -> gap 0.05, weight 3/5
    #           [0.5, 1] holds 0.9, 0.65 (mean 0.775, all positive)        -> gap 0.225, weight 2/5
    assert expected_calibration_error(Y, P, n_bins=2) == pytest.approx(0.03 + 0.09)


def test_reliability_curve_lists_non_empty_bins_in_order():
    curve = reliability_curve(Y, P, n_bins=2)
    np.testing.assert_allclose(curve.mean_score, [0.85 / 3, 0.775])
    np.testing.assert_allclose(curve.fraction_positive, [1 / 3, 1.0])
    np.testing.assert_array_equal(curve.count, [3, 2])
    # a score of exactly 1.0 joins the last bin; empty bins are left out
    edge = reliability_curve([1, 0], [1.0, 0.0], n_bins=4)
    np.testing.assert_array_equal(edge.count, [1, 1])
    np.testing.assert_array_equal(edge.mean_score, [0.0, 1.0])
    assert edge.as_dict() == {
        "mean_score": [0.0, 1.0],
        "fraction_positive": [0.0, 1.0],
        "count": [1, 1],
    }


def test_perfectly_calibrated_scores_have_small_ece():
    rng = np.random.default_rng(0)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, p**3) > 0.1  # systematically too low


def test_logits_are_refused():
    with pytest.raises(ConfigError, match="probabilities"):
        brier_score([0, 1], [-2.0, 3.0])
    with pytest.raises(ConfigError, match="n_bins"):
        reliability_curve([0, 1], [0.2, 0.8], n_bins=0)
