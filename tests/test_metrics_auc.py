"""AUC, micro/macro AUC and ROC points against hand-counted concordant pairs."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics import (
    macro_auc,
    micro_auc,
    per_class_auc,
    roc_auc,
    roc_curve_points,
)


def test_auc_counts_concordant_pairs_with_ties_as_half():
    # positives 0.9, 0.4, 0.7 against negatives 0.4, 0.2, 0.8:
    # 0.9 beats all three (3); 0.4 ties 0.4 (0.5) and beats 0.2 (1); 0.7 beats 0.4 and 0.2 (2)
    y = [1, 1, 0, 0, 1, 0]
    s = [0.9, 0.4, 0.4, 0.2, 0.7, 0.8]
    assert roc_auc(y, s) == pytest.approx(6.5 / 9, abs=1e-15)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-15)


def test_auc_perfect_reversed_and_constant_scores():
    y = [0, 0, 1, 1]
    assert roc_auc(y, [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc(y, [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5  # every pair tied


def test_auc_is_nan_not_an_error_when_a_class_has_one_value():
    assert np.isnan(roc_auc([0, 0, 0], [0.1, 0.5, 0.9]))
    assert np.isnan(roc_auc([1, 1], [0.1, 0.5]))
    assert np.isnan(roc_auc(np.zeros(0), np.zeros(0)))


# label A: positives 0.8, 0.6 beat negatives 0.3, 0.5 in all 4 pairs -> 1.0
# label B: positive 0.7 beats 0.2 only, positive 0.1 beats nothing -> 1/4
# label C: no positive -> NaN
Y = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
S = np.array([[0.8, 0.2, 0.5], [0.3, 0.7, 0.1], [0.6, 0.9, 0.2], [0.5, 0.1, 0.3]])


def test_per_class_micro_and_macro_by_hand():
    np.testing.assert_array_equal(per_class_auc(Y, S)[:2], [1.0, 0.25])
    assert np.isnan(per_class_auc(Y, S)[2])
    # macro skips the one-valued class C
    assert macro_auc(Y, S) == pytest.approx(0.625)
    # micro over labels A and B: positives 0.8, 0.6, 0.7 each beat the negatives 0.3, 0.5, 0.2
    # (3 pairs each), positive 0.1 beats none, and no positive beats 0.9 -> 9 of 16 pairs;
    # with label C the negatives 0.5, 0.1, 0.2, 0.3 join: 0.8, 0.6 beat all 4, 0.7 beats all 4,
    # 0.1 beats none (tie with 0.1 is 0.5) -> (9 + 12 + 0.5) / 32
    assert micro_auc(Y[:, :2], S[:, :2]) == pytest.approx(9 / 16)
    assert micro_auc(Y, S) == pytest.approx(21.5 / 32)
    assert micro_auc(Y, S) == pytest.approx(roc_auc_score(Y.ravel(), S.ravel()))


def test_macro_is_nan_when_no_class_has_both_values():
    assert np.isnan(macro_auc(np.zeros((3, 2)), np.ones((3, 2))))


def test_matches_sklearn_on_random_multilabel_data():
    rng = np.random.default_rng(1)
    y = (rng.random((500, 5)) < [0.02, 0.1, 0.3, 0.5, 0.8]).astype(int)
    s = np.round(rng.random((500, 5)) + 0.4 * y, 2)  # rounding makes many ties
    expected = [roc_auc_score(y[:, k], s[:, k]) for k in range(5)]
    np.testing.assert_allclose(per_class_auc(y, s), expected, rtol=0, atol=1e-12)
    assert macro_auc(y, s) == pytest.approx(np.mean(expected), abs=1e-12)


def test_roc_curve_points_span_the_unit_square():
    curve = roc_curve_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert (curve.fpr[0], curve.tpr[0]) == (0.0, 0.0)
    assert (curve.fpr[-1], curve.tpr[-1]) == (1.0, 1.0)
    assert np.trapezoid(curve.tpr, curve.fpr) == pytest.approx(curve.auc) == pytest.approx(0.75)
    empty = roc_curve_points([1, 1], [0.2, 0.3])
    assert empty.fpr.size == 0 and np.isnan(empty.auc)


def test_bad_inputs_raise_config_errors_with_one_line():
    with pytest.raises(ConfigError, match="shape"):
        per_class_auc(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="only 0 and 1"):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ConfigError, match="NaN"):
        roc_auc([0, 1, 1], [0.1, np.nan, 0.3])
    with pytest.raises(ConfigError, match="one column"):
        roc_auc(Y, S)
