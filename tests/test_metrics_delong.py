"""DeLong's test (Sun & Xu fast algorithm) against the plain O(n^2) definition, and Holm."""

import numpy as np
import pytest
from scipy.stats import norm

from cxr_attention.core.metrics import (
    bootstrap_auc,
    delong_auc_ci,
    delong_covariance,
    delong_test,
    holm_adjust,
    roc_auc,
)


def _plain_delong(y, *scores):
    """DeLong et al. (1988) as written: psi over every (positive, negative) pair."""
    y = np.asarray(y).astype(bool)
    v10, v01, aucs = [], [], []
    for s in scores:
        s = np.asarray(s, dtype=float)
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))  # one structural component per positive
        v01.append(psi.mean(axis=0))  # one per negative
    m, n = y.sum(), (~y).sum()
    cov = np.atleast_2d(np.cov(np.array(v10))) / m + np.atleast_2d(np.cov(np.array(v01))) / n
    return np.array(aucs), cov


def test_variance_of_one_auc_on_a_hand_case():
    # positives 3, 2; negatives 1, 2.5: psi = [[1, 1], [1, 0]] -> AUC 0.75,
    # V10 = (1, 0.5), V01 = (1, 0.5), each with sample variance 0.125 -> 0.125/2 + 0.125/2
    aucs, cov = delong_covariance([1, 1, 0, 0], [3, 2, 1, 2.5])
    assert aucs[0] == 0.75
    assert cov[0, 0] == pytest.approx(0.125, abs=1e-15)


def test_fast_components_equal_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    y = (rng.random(150) < 0.3).astype(int)
    a = np.round(rng.random(150) + 0.6 * y, 1)  # rounding: many ties within and across classes
    b = np.round(0.5 * a + rng.random(150), 1)
    aucs, cov = delong_covariance(y, a, b)
    plain_aucs, plain_cov = _plain_delong(y, a, b)
    np.testing.assert_allclose(aucs, plain_aucs, atol=1e-14)
    np.testing.assert_allclose(cov, plain_cov, atol=1e-14)

    result = delong_test(y, a, b)
    variance = plain_cov[0, 0] + plain_cov[1, 1] - 2 * plain_cov[0, 1]
    z = (plain_aucs[0] - plain_aucs[1]) / np.sqrt(variance)
    assert result.difference == pytest.approx(plain_aucs[0] - plain_aucs[1], abs=1e-14)
    assert result.variance == pytest.approx(variance, abs=1e-14)
    assert result.z == pytest.approx(z, rel=1e-10)
    assert result.p_value == pytest.approx(2 * norm.sf(abs(z)), rel=1e-10)
    half = 1.959963984540054 * np.sqrt(variance)
    np.testing.assert_allclose(result.ci, (result.difference - half, result.difference + half))
    assert (result.auc_a, result.auc_b) == (roc_auc(y, a), roc_auc(y, b))


def test_p_value_is_symmetric_and_identical_models_give_p_one():
    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.4).astype(int)
    a = rng.random(200) + 0.8 * y
    b = rng.random(200) + 0.3 * y
    ab, ba = delong_test(y, a, b), delong_test(y, b, a)
    assert ab.p_value == pytest.approx(ba.p_value, abs=1e-15)
    assert ab.difference == pytest.approx(-ba.difference, abs=1e-15)
    assert ab.difference > 0 and ab.p_value < 0.01  # a is clearly better

    same = delong_test(y, a, a)
    assert (same.difference, same.z, same.p_value) == (0.0, 0.0, 1.0)
    # a monotone rescaling ranks every pair alike: the same AUC, so no difference either
    assert delong_test(y, a, np.exp(3 * a)).p_value == 1.0


def test_delong_variance_agrees_with_an_image_bootstrap():
    # independent images (one per patient): the bootstrap variance estimates the same quantity
    rng = np.random.default_rng(2)
    y = (rng.random(600) < 0.3).astype(int)
    s = rng.random(600) + 0.4 * y
    _, cov = delong_covariance(y, s)
    boot = bootstrap_auc(y, s, np.arange(600), n_resamples=2000, seed=0)
    assert np.var(boot.micro, ddof=1) == pytest.approx(cov[0, 0], rel=0.15)
    low, high = delong_auc_ci(y, s)
    assert low < roc_auc(y, s) < high


def test_undefined_classes_give_nan_not_errors():
    result = delong_test([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])
    assert np.isnan(result.p_value) and np.isnan(result.auc_a)
    assert result.n_positive == 1 and result.n_negative == 3


def test_holm_on_a_hand_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (monotone)
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm_adjust(p), [0.03, 0.06, 0.06, 0.02])
    # NaN (untestable class) stays NaN and does not count in m
    adjusted = holm_adjust([0.01, np.nan, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, np.nan, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm_adjust([0.5, 0.9]), [1.0, 1.0])  # capped at 1
