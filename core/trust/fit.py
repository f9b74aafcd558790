"""After training: fit the OOD description and the temperatures, and summarise what they do.

Called once at the end of `fit` on the best checkpoint's model. The training split gives the
Gaussians of the OOD description (at most `MAX_TRAIN_IMAGES` films, a random subset for a large
split); the validation split gives the OOD threshold, the temperatures, and the calibrated scores
on which the operating thresholds are then chosen. The test split is never read.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cxr_attention.core.metrics.calibration import brier_score, expected_calibration_error
from cxr_attention.core.trust.features import FeatureModel, collect_outputs
from cxr_attention.core.trust.ood import QUANTILE, OodDetector, fit_ood
from cxr_attention.core.trust.temperature import TemperatureScaling, binary_nll, fit_temperatures

MAX_TRAIN_IMAGES = (
    20_000  # enough for a 2048-channel Gaussian; a pass over ChestX-ray14's 86k is not
)


@dataclass(frozen=True)
class TrustFit:
    """What the checkpoint stores, and the calibrated validation scores thresholds are chosen on."""

    ood: OodDetector
    calibration: TemperatureScaling
    validation: dict[str, float]  # NLL, Brier and ECE on validation before and after scaling
    val_probabilities: np.ndarray  # (n_val, L) calibrated
    val_targets: np.ndarray  # (n_val, L) 0/1

    def calibration_section(self) -> dict[str, Any]:
        """The checkpoint's `calibration` dict: the temperatures and how they did on validation."""
        return self.calibration.to_dict() | {"fitted_on": "val", **self.validation}


def fit_trust(
    model: FeatureModel,
    train_batches: Iterable,
    val_batches: Iterable,
    batch_size: int,
    device: torch.device | str = "cpu",
    quantile: float = QUANTILE,
) -> TrustFit:
    """Run the model over (a subset of) the training split and the validation split, then fit.

    `train_batches` should be shuffled (the first `MAX_TRAIN_IMAGES` films are used);
    `val_batches` is read whole. Both yield loader batches (uint8 images, targets, rows).
    """
    labels = model.config.labels
    limit = math.ceil(MAX_TRAIN_IMAGES / max(1, batch_size))
    train = collect_outputs(model, itertools.islice(train_batches, limit), device)
    val = collect_outputs(model, val_batches, device)
    ood = fit_ood(train.features, val.features, quantile)
    calibration = fit_temperatures(val.logits, val.targets, labels)
    raw = 1.0 / (1.0 + np.exp(-val.logits.astype(np.float64)))
    calibrated = calibration.probabilities(val.logits)
    validation = {
        "n_images": int(len(val.targets)),
        "nll_before": binary_nll(val.logits, val.targets),
        "nll_after": binary_nll(val.logits / np.asarray(calibration.temperatures), val.targets),
        "brier_before": brier_score(val.targets, raw),
        "brier_after": brier_score(val.targets, calibrated),
        "ece_before": expected_calibration_error(val.targets, raw),
        "ece_after": expected_calibration_error(val.targets, calibrated),
    }
    return TrustFit(ood, calibration, validation, calibrated, val.targets)
