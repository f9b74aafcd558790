"""Out-of-distribution score: how unlike the training films an image is, in the model's own features.

Method (Lee et al., "A simple unified framework for detecting out-of-distribution samples and
adversarial attacks", NeurIPS 2018, with their feature ensemble over layers, without labels or
outlier examples): for the input's 8 x 8 layout, every feature stage and the final pooled
features (`core.trust.features.pooled_forward`), one Gaussian is fitted on
the TRAINING split (class-agnostic: the labels are not exclusive) with Ledoit-Wolf shrinkage, kept
as its top principal directions (at most `MAX_COMPONENTS`) plus one variance for the rest (the
probabilistic-PCA form, exact when a layer has fewer channels). An image's distance to each
Gaussian (Mahalanobis) is standardised by that layer's distances on the VALIDATION split (mean 0,
standard deviation 1); the score is the largest standardised distance over the layers. The
threshold is the `QUANTILE` quantile of the validation scores, so that share of films like the
training set passes; an image scoring above it is flagged.

Measured on phantom-trained MobileNetV2s (README, "Out-of-distribution warning and calibration"):
the final features alone miss half of the real NIH films, early stages catch most of them; after
a short run on a small phantom the stages let 2% of re-acquired real views through, the input's
layout none. The ensemble flags every real film and every non-chest image while passing about 96 to
98% of unseen phantom films.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from cxr_attention.core.errors import CheckpointError, ConfigError

METHOD = "mahalanobis-layers"
QUANTILE = 0.975  # share of validation films that pass
MAX_COMPONENTS = 256  # principal directions kept per layer (storage and cost grow with it)


@dataclass(frozen=True)
class OodVerdict:
    """One image's score against the model's threshold; flagged when the score is above it."""

    score: float
    threshold: float

    @property
    def flagged(self) -> bool:
        return bool(self.score > self.threshold)

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": round(float(self.score), 4),
            "threshold": round(float(self.threshold), 4),
            "flagged": self.flagged,
        }


@dataclass(frozen=True)
class LayerGaussian:
    """The training films' pooled features at one layer, as a Gaussian."""

    name: str  # "input", "stage0", ..., "final"
    mean: torch.Tensor  # (C,)
    basis: torch.Tensor  # (C, k) principal directions of the shrunk covariance
    inverse_variance: torch.Tensor  # (k,) 1 / variance along each direction
    residual_inverse_variance: float  # 1 / mean variance of the other C - k directions (0 if none)
    val_mean: float  # mean distance of the validation films
    val_std: float  # their standard deviation

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        """Mahalanobis distance (B,) of pooled features (B, C) to the Gaussian."""
        z = features.float() - self.mean.to(features.device)
        projected = z @ self.basis.to(features.device)
        squared = (projected.square() * self.inverse_variance.to(features.device)).sum(dim=1)
        if self.residual_inverse_variance > 0:
            rest = (z.square().sum(dim=1) - projected.square().sum(dim=1)).clamp_min(0)
            squared = squared + rest * self.residual_inverse_variance
        return squared.sqrt()

    def standardised(self, features: torch.Tensor) -> torch.Tensor:
        return (self.distance(features) - self.val_mean) / self.val_std

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mean": self.mean.cpu(),
            "basis": self.basis.cpu(),
            "inverse_variance": self.inverse_variance.cpu(),
            "residual_inverse_variance": float(self.residual_inverse_variance),
            "val_mean": float(self.val_mean),
            "val_std": float(self.val_std),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerGaussian:
        layer = cls(
            name=str(data["name"]),
            mean=torch.as_tensor(data["mean"], dtype=torch.float32),
            basis=torch.as_tensor(data["basis"], dtype=torch.float32),
            inverse_variance=torch.as_tensor(data["inverse_variance"], dtype=torch.float32),
            residual_inverse_variance=float(data["residual_inverse_variance"]),
            val_mean=float(data["val_mean"]),
            val_std=float(data["val_std"]),
        )
        channels, k = layer.basis.shape
        if layer.mean.shape != (channels,) or layer.inverse_variance.shape != (k,):
            raise ValueError(f"layer {layer.name}: shapes of mean, basis and variances disagree")
        return layer


@dataclass(frozen=True)
class OodDetector:
    """Per-layer Gaussians of the training films and the validation-chosen threshold."""

    layers: tuple[LayerGaussian, ...]
    threshold: float
    quantile: float  # share of validation films at or under the threshold
    n_train: int  # training films the Gaussians were fitted on
    n_val: int  # validation films behind the standardisation and the threshold

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def score(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Scores (B,) from pooled features {layer name: (B, C)} (`core.trust.features`)."""
        missing = [name for name in self.layer_names if name not in features]
        if missing:
            raise ConfigError(f"no pooled features for layer {missing[0]!r}: wrong model?")
        per_layer = torch.stack([layer.standardised(features[layer.name]) for layer in self.layers])
        return per_layer.amax(dim=0)

    def verdicts(self, features: Mapping[str, torch.Tensor]) -> list[OodVerdict]:
        return [OodVerdict(float(s), self.threshold) for s in self.score(features).cpu()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "layers": [layer.to_dict() for layer in self.layers],
            "threshold": float(self.threshold),
            "quantile": float(self.quantile),
            "n_train": int(self.n_train),
            "n_val": int(self.n_val),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OodDetector:
        """Read a checkpoint's `ood` section; `CheckpointError` when it is damaged."""
        if not isinstance(data, Mapping) or data.get("method") != METHOD:
            method = data.get("method") if isinstance(data, Mapping) else None
            raise CheckpointError(f"its OOD section uses an unknown method ({method!r})")
        try:
            return cls(
                layers=tuple(LayerGaussian.from_dict(layer) for layer in data["layers"]),
                threshold=float(data["threshold"]),
                quantile=float(data["quantile"]),
                n_train=int(data["n_train"]),
                n_val=int(data["n_val"]),
            )
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"its OOD section is damaged ({exc})") from None


def fit_layer(name: str, train: np.ndarray, val: np.ndarray, max_components: int) -> LayerGaussian:
    """One layer's Gaussian from training features (n, C), standardised on validation (m, C)."""
    from sklearn.covariance import LedoitWolf  # here: importing sklearn costs every command 1.4 s

    shrunk = LedoitWolf().fit(np.asarray(train, dtype=np.float64))
    variance, directions = np.linalg.eigh(shrunk.covariance_)
    variance, directions = variance[::-1], directions[:, ::-1]  # largest first
    k = min(max_components, variance.size)
    floor = max(float(variance[0]) * 1e-9, 1e-12)  # guards a degenerate (constant) feature
    kept = np.maximum(variance[:k], floor)
    rest = float(np.maximum(variance[k:], floor).mean()) if k < variance.size else 0.0
    layer = LayerGaussian(
        name=name,
        mean=torch.as_tensor(shrunk.location_, dtype=torch.float32),
        basis=torch.as_tensor(directions[:, :k].copy(), dtype=torch.float32),
        inverse_variance=torch.as_tensor(1.0 / kept, dtype=torch.float32),
        residual_inverse_variance=1.0 / rest if rest > 0 else 0.0,
        val_mean=0.0,
        val_std=1.0,
    )
    distances = layer.distance(torch.as_tensor(val, dtype=torch.float32)).numpy()
    spread = float(distances.std()) if distances.size > 1 else 0.0
    return replace(layer, val_mean=float(distances.mean()), val_std=spread if spread > 0 else 1.0)


def fit_ood(
    train: Mapping[str, np.ndarray],
    val: Mapping[str, np.ndarray],
    quantile: float = QUANTILE,
    max_components: int = MAX_COMPONENTS,
    layers: Sequence[str] | None = None,
) -> OodDetector:
    """Fit the detector on training features and choose its threshold on validation features.

    Args:
        train, val: pooled features {layer name: (n, C)} of the training and validation splits
            (`core.trust.features.collect_outputs`).
        quantile: share of validation films that must pass, in (0, 1].
        layers: which layers to use (default: every layer present in both).
    """
    if not 0.0 < quantile <= 1.0:
        raise ConfigError(f"OOD quantile must be in (0, 1], got {quantile}")
    names = list(layers) if layers is not None else [n for n in train if n in val]
    if not names:
        raise ConfigError("no layers to fit the OOD description on")
    n_train, n_val = len(train[names[0]]), len(val[names[0]])
    if n_train < 2 or n_val < 1:
        raise ConfigError(
            f"the OOD description needs at least 2 training and 1 validation films "
            f"({n_train} and {n_val} given)"
        )
    fitted = tuple(fit_layer(n, train[n], val[n], max_components) for n in names)
    detector = OodDetector(fitted, threshold=0.0, quantile=quantile, n_train=n_train, n_val=n_val)
    val_scores = detector.score({n: torch.as_tensor(val[n], dtype=torch.float32) for n in names})
    threshold = float(np.quantile(val_scores.numpy(), quantile))
    return OodDetector(fitted, threshold, quantile, n_train, n_val)
