"""Whether an image is like the films the lung model knows: its own out-of-distribution check.

Shape rules alone (`core.lungs.plausible`) pass a gradient, a checkerboard or an axial CT slice
drawn with two dark lungs: a segmenter finds "lungs" in all of them. So the lung model carries a
description of the films it knows, the same method as the classifiers' warning (`core.trust.ood`:
one Gaussian per layer of pooled features, distances standardised on validation films, the score
the largest over layers; Lee et al. 2018), on layers of its own:

- ``input``: the standardised view averaged over 8 x 8 cells (the film's layout);
- ``stage1``..``stage5``: each encoder stage's channels averaged over the image (its textures);
- ``field``: the lung-field probability averaged over 8 x 8 cells (where it found lung).

It is fitted on the training films (the outlined ones, and unlabelled films it should also know:
the paediatric collection) and standardised on their validation films. Two thresholds, because a
refused film gets no mask at all: above `warn` (the 0.99 quantile of the validation scores) the
mask is written with a warning that the film is unlike the ones the model knows; above `refuse`
(`REFUSE_FACTOR` times the largest validation score, and never below `REFUSE_FLOOR`) it is not
written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cxr_attention.core.lungs.familiarity import Familiarity
from cxr_attention.core.lungs.model import LungModel, standardise
from cxr_attention.core.trust.ood import fit_ood

WARN_QUANTILE = 0.99
REFUSE_FACTOR = 2.5  # times the largest validation score
REFUSE_FLOOR = 30.0  # standardised distances: never refuse below this (measured: a real
# Montgomery film with a black band over half its height scores 19, a drawn hand 19, noise 99)
LAYOUT = 8


def lung_features(model: LungModel, views: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
    """Pooled features {layer: (B, C)} of uint8 views (B, S, S) at the model's size."""
    return lung_pass(model, views)[1]


@torch.inference_mode()
def lung_pass(
    model: LungModel, views: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One pass of the segmenter over uint8 views (B, S, S): the lung-field probability
    (B, S, S) and the pooled features {layer: (B, C)} its familiarity is judged on."""
    x = torch.as_tensor(np.ascontiguousarray(views))
    x = standardise(x.unsqueeze(1) if x.ndim == 3 else x)
    network = model.network
    device = next(network.parameters()).device
    x = x.to(device)
    stages = network.encoder(x)
    field = torch.sigmoid(network.segmentation_head(network.decoder(stages)).float())
    out = {"input": F.adaptive_avg_pool2d(x, LAYOUT).flatten(1)}
    for i, stage in enumerate(stages[1:], start=1):
        out[f"stage{i}"] = stage.float().mean(dim=(2, 3))
    out["field"] = F.adaptive_avg_pool2d(field, LAYOUT).flatten(1)
    return field[:, 0].cpu(), {name: value.cpu() for name, value in out.items()}


def collect(model: LungModel, views: Sequence[np.ndarray] | np.ndarray, batch: int = 32):
    """{layer: (n, C) float32 numpy} over uint8 views (n, S, S)."""
    views = np.asarray(views)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(views), batch):
        for name, value in lung_features(model, views[start : start + batch]).items():
            parts.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(value) for name, value in parts.items()}


def fit_familiarity(
    model: LungModel, train_views: np.ndarray, val_views: np.ndarray
) -> Familiarity:
    """The description of the training views, its thresholds from the validation views."""
    train, val = collect(model, train_views), collect(model, val_views)
    detector = fit_ood(train, val, quantile=WARN_QUANTILE)
    val_scores = detector.score({k: torch.as_tensor(v) for k, v in val.items()}).numpy()
    refuse = max(REFUSE_FLOOR, REFUSE_FACTOR * float(val_scores.max()))
    return Familiarity(detector, warn=detector.threshold, refuse=refuse)
