"""Patient bootstrap: equal to a brute-force loop over the same resamples, patients kept whole."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.metrics import ClusterBootstrap, bootstrap_auc, micro_auc, percentile_ci


def _small_split(seed=0):
    rng = np.random.default_rng(seed)
    images_per_patient = rng.integers(1, 7, size=15)  # 15 patients, 1-6 images each
    patients = np.repeat(np.arange(100, 115), images_per_patient)
    rng.shuffle(patients)  # a patient's images are not contiguous in the table
    n = patients.size
    # label 0 common, label 1 rare, label 2 with ties
    y = (rng.random((n, 3)) < [0.4, 0.06, 0.3]).astype(int)
    y[:, 1] = 0
    y[0, 1] = 1  # one positive image: resamples without its patient have no AUC for label 1
    s = rng.random((n, 3)) + 0.5 * y
    s[:, 2] = np.round(s[:, 2], 1)
    return y, s, patients


def _brute_force(y, s, patients, bootstrap):
    """The plain loop: for each resample, gather the drawn patients' images and call sklearn."""
    micro, macro, per_class = [], [], []
    for row in bootstrap.draws:
        drawn = bootstrap.patients[row]
        idx = np.concatenate([np.flatnonzero(patients == p) for p in drawn])
        yb, sb = y[idx], s[idx]
        aucs = [
            roc_auc_score(yb[:, k], sb[:, k]) if 0 < yb[:, k].sum() < len(idx) else np.nan
            for k in range(y.shape[1])
        ]
        per_class.append(aucs)
        macro.append(np.nanmean(aucs) if not np.isnan(aucs).all() else np.nan)
        micro.append(roc_auc_score(yb.ravel(), sb.ravel()))
    return np.array(micro), np.array(macro), np.array(per_class)


def test_vectorised_bootstrap_equals_the_loop_on_the_same_resamples():
    y, s, patients = _small_split()
    draws = ClusterBootstrap.draw(patients, n_resamples=200, seed=7)
    result = bootstrap_auc(y, s, patients, bootstrap=draws)
    micro, macro, per_class = _brute_force(y, s, patients, draws)

    assert np.isnan(per_class[:, 1]).any()  # the rare label is missing from some resamples
    np.testing.assert_array_equal(np.isnan(result.per_class), np.isnan(per_class))
    np.testing.assert_allclose(result.per_class, per_class, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.macro, macro, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.micro, micro, rtol=0, atol=1e-12)

    def loop_ci(samples):
        kept = samples[~np.isnan(samples)]
        return np.percentile(kept, [2.5, 97.5])

    np.testing.assert_allclose(result.micro_ci, loop_ci(micro), atol=1e-12)
    np.testing.assert_allclose(result.macro_ci, loop_ci(macro), atol=1e-12)
    for k in range(3):
        np.testing.assert_allclose(result.per_class_ci[k], loop_ci(per_class[:, k]), atol=1e-12)


def test_resamples_move_all_images_of_a_patient_together():
    y, s, patients = _small_split()
    draws = ClusterBootstrap.draw(patients, n_resamples=20, seed=3)
    weights = draws.image_weights()
    for b in range(draws.n_resamples):
        idx = draws.resample_indices(b)
        appearances = np.bincount(idx, minlength=patients.size)
        np.testing.assert_array_equal(appearances, weights[b])
        for p, times in zip(draws.patients, draws.counts[b], strict=True):
            # every image of patient p appears exactly as often as p was drawn
            assert set(appearances[patients == p]) == {times}
        assert draws.counts[b].sum() == draws.patients.size  # as many draws as patients


def test_same_seed_same_intervals_and_a_generator_is_accepted():
    y, s, patients = _small_split()
    first = bootstrap_auc(y, s, patients, n_resamples=100, seed=5)
    again = bootstrap_auc(y, s, patients, n_resamples=100, seed=5)
    other = bootstrap_auc(y, s, patients, n_resamples=100, seed=6)
    generator = bootstrap_auc(y, s, patients, n_resamples=100, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(first.micro, again.micro)
    np.testing.assert_array_equal(first.micro, generator.micro)
    assert not np.array_equal(first.micro, other.micro)
    assert first.micro_ci[0] < first.micro_ci[1]


def test_patient_resampling_widens_intervals_when_a_patients_images_agree():
    # 40 patients with 10 near-identical films each: effectively 40 cases, not 400
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(40), 10)
    y = np.repeat(rng.random(40) < 0.5, 10).astype(int)
    s = np.repeat(rng.random(40) + 0.5 * y[::10], 10) + rng.normal(0, 1e-3, 400)
    by_patient = bootstrap_auc(y, s, patients, n_resamples=400, seed=0)
    by_image = bootstrap_auc(y, s, np.arange(400), n_resamples=400, seed=0)
    width = np.diff(by_patient.micro_ci)[0]
    assert width > 2 * np.diff(by_image.micro_ci)[0]


def test_at_the_chestxray14_test_split_size_resamples_equal_sklearn():
    """The 25,596 test images of 2,797 patients, 1,000 resamples, float32 scores with ties: the
    sparse weighted sums that make it fast give sklearn's AUC on the resamples checked by
    hand. (How fast: benchmarks/bench_bootstrap.py; 3 labels keep the suite quick.)"""
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 2797, 25596)
    y = (rng.random((25596, 3)) < 0.05).astype(int)
    s = np.round(rng.random((25596, 3)) + 0.3 * y, 3).astype(np.float32)
    draws = ClusterBootstrap.draw(patients, n_resamples=1000, seed=0)
    result = bootstrap_auc(y, s, patients, bootstrap=draws)
    assert result.per_class.shape == (1000, 3) and not np.isnan(result.per_class).any()
    for b in (0, 499, 999):
        idx = draws.resample_indices(b)
        for k in range(3):
            expected = roc_auc_score(y[idx, k], s[idx, k])
            assert result.per_class[b, k] == pytest.approx(expected, abs=1e-12), (b, k)
        assert result.micro[b] == pytest.approx(
            roc_auc_score(y[idx].ravel(), s[idx].ravel()), abs=1e-12
        )
    assert result.micro_ci[0] < micro_auc(y, s) < result.micro_ci[1]


def test_zero_resamples_give_nan_intervals_and_bad_levels_are_refused():
    y, s, patients = _small_split()
    result = bootstrap_auc(y, s, patients, n_resamples=0)
    assert np.isnan(result.micro_ci).all() and np.isnan(result.per_class_ci).all()
    assert percentile_ci([np.nan, np.nan]) != percentile_ci([np.nan, np.nan])  # NaN pair
    with pytest.raises(ConfigError, match="between 0 and 1"):
        percentile_ci([0.5, 0.6], level=95)
    with pytest.raises(ConfigError, match="one entry per image"):
        bootstrap_auc(y, s, patients[:-1], n_resamples=10)
