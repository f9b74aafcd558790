"""Temperature scaling: fitted on validation, it undoes over- and under-confidence without
touching the ranking (AUC), and survives the trip through a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from cxr_attention.core.errors import CheckpointError, ConfigError
from cxr_attention.core.metrics import expected_calibration_error, per_class_auc
from cxr_attention.core.trust.temperature import (
    TemperatureScaling,
    binary_nll,
    fit_temperature,
    fit_temperatures,
)

LABELS = ("Effusion", "Nodule", "Mass")


def calibrated_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits (n, 3) whose sigmoid is the true probability of the 0/1 targets (n, 3)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(loc=[-2.0, -1.0, 0.0], scale=[1.5, 1.0, 2.0], size=(n, 3))
    targets = (rng.random((n, 3)) < expit(logits)).astype(np.float32)
    return logits, targets


def test_over_confident_model_is_softened_and_its_auc_kept():
    # A deliberately over-confident model: true logits times 4 (label 0), 2.5 and 1 (already fine).
    factors = np.array([4.0, 2.5, 1.0])
    val_logits, val_targets = calibrated_sample(4000, seed=0)
    test_logits, test_targets = calibrated_sample(4000, seed=1)
    scaling = fit_temperatures(val_logits * factors, val_targets, LABELS)

    np.testing.assert_allclose(scaling.temperatures, factors, rtol=0.12)
    raw = expit(test_logits * factors)
    calibrated = scaling.probabilities(test_logits * factors)
    before = expected_calibration_error(test_targets, raw)
    after = expected_calibration_error(test_targets, calibrated)
    assert before > 0.05 and after < 0.02 and after < before / 3
    # Dividing by a positive temperature keeps every label's ranking: AUCs are identical.
    np.testing.assert_array_equal(
        per_class_auc(test_targets, raw), per_class_auc(test_targets, calibrated)
    )
    assert binary_nll(test_logits * factors / scaling.temperatures, test_targets) < binary_nll(
        test_logits * factors, test_targets
    )


def test_under_confident_label_is_sharpened():
    logits, targets = calibrated_sample(4000, seed=2)
    assert fit_temperature(logits[:, 2] * 0.5, targets[:, 2]) == pytest.approx(0.5, rel=0.12)


def test_fitted_temperature_minimises_the_validation_nll():
    logits, targets = calibrated_sample(500, seed=3)
    z, y = logits[:, 1] * 3.0, targets[:, 1]
    best = fit_temperature(z, y)
    grid = np.linspace(0.5 * best, 2.0 * best, 61)
    by_grid = grid[np.argmin([binary_nll(z / t, y) for t in grid])]
    assert best == pytest.approx(by_grid, rel=0.03)


def test_rare_labels_lean_on_the_pooled_temperature():
    logits, targets = calibrated_sample(3000, seed=4)
    logits = logits * 3.0  # every label over-confident by 3
    targets[:, 0] = 0
    targets[:3, 0] = 1  # Effusion: three validation positives only
    alone = fit_temperatures(logits, targets, LABELS, prior_cases=0)
    pooled = fit_temperature(logits.ravel(), targets.ravel())
    scaling = fit_temperatures(logits, targets, LABELS)
    # Three positives: mostly the pooled temperature (weight 3 / 23 on its own fit).
    expected = np.exp(3 / 23 * np.log(alone.temperatures[0]) + 20 / 23 * np.log(pooled))
    assert scaling.temperatures[0] == pytest.approx(expected, rel=1e-6)
    # Hundreds of cases: close to its own fit.
    assert scaling.temperatures[2] == pytest.approx(alone.temperatures[2], rel=0.03)
    # A label with one class only takes the pooled temperature; with no information at all, 1.
    targets[:, 0] = 0
    assert fit_temperatures(logits, targets, LABELS).temperatures[0] == pytest.approx(
        fit_temperature(logits.ravel(), targets.ravel())
    )
    assert fit_temperature(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == 1.0


def test_round_trip_and_clear_errors():
    scaling = TemperatureScaling(LABELS, (1.5, 0.8, 1.0))
    again = TemperatureScaling.from_dict(scaling.to_dict(), LABELS)
    assert again == scaling
    with pytest.raises(CheckpointError, match="do not name the model's labels"):
        TemperatureScaling.from_dict(scaling.to_dict(), ("Effusion", "Nodule"))
    with pytest.raises(CheckpointError, match="not temperature scaling"):
        TemperatureScaling.from_dict({"method": "platt"}, LABELS)
    with pytest.raises(ConfigError, match="finite and positive"):
        TemperatureScaling(LABELS, (1.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match=r"must both be \(n, 3\)"):
        fit_temperatures(np.zeros((4, 2)), np.zeros((4, 2)), LABELS)
