"""The faithfulness check of the study: blank where a map attends, and see the score fall.

For one (film, finding) with a truth region of A pixels in the model view, the map's
*attended region* is its A highest pixels (`top_region` of `Explanation.ranked`: a class map's by
its log-odds, which do not tie where its sigmoid saturates; other ties in raster order). Setting those
pixels to black (`core.explain.integrated_gradients.black_baseline`, in every channel) and scoring
the film again gives the drop of that finding's probability. The control blanks a region of exactly
the same size and shape placed at random (`random_placement`: the attended region translated by a
seeded random offset that keeps it inside the view). A map that shows the evidence the model uses
makes its own region's drop larger than the random region's.

Why the truth's area: the question is whether the map finds the finding, and a region the size of
the lesion is the most the lesion itself can take away; a fixed share of the image would blank far
more than a small nodule (or far less than an enlarged heart). A constant map (Grad-CAM that its
ReLU emptied) ranks pixels in raster order: its region is a band along the top edge, which is what
such a map is worth.

This is a single-step version of the deletion curve (Petsiuk et al., RISE, BMVC 2018;
`core.explain.faithfulness`), at the one size the truth gives, with a size-matched random control.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import binomtest

TIE = 1e-3  # drops closer than this (in probability) count as a tie in the sign test
Predict = Callable[
    [torch.Tensor], torch.Tensor
]  # normalised batch (B, C, H, W) -> (B, L) in [0, 1]


def top_region(heatmap: np.ndarray, area: int) -> np.ndarray:
    """Boolean (H, W): the `area` highest pixels of `heatmap` (H, W); ties broken in raster order."""
    heat = np.asarray(heatmap, dtype=np.float64)
    if not 0 < area <= heat.size:
        raise ValueError(f"area must lie in 1..{heat.size}, got {area}")
    order = np.argsort(-heat.ravel(), kind="stable")
    region = np.zeros(heat.size, dtype=bool)
    region[order[:area]] = True
    return region.reshape(heat.shape)


def random_placement(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`region` (H, W, boolean) moved by a random offset that keeps its bounding box in the view.

    Same pixels, same shape; every placement of the bounding box inside the view is equally likely
    (a region whose box spans the view in one direction can only move in the other).
    """
    region = np.asarray(region, dtype=bool)
    rows, cols = np.nonzero(region)
    if rows.size == 0:
        raise ValueError("cannot place an empty region")
    height, width = region.shape
    dy = int(rng.integers(-rows.min(), height - rows.max()))  # top edge from 0 to H - box height
    dx = int(rng.integers(-cols.min(), width - cols.max()))
    moved = np.zeros_like(region)
    moved[rows + dy, cols + dx] = True
    return moved


def blanked_probabilities(
    predict: Predict,
    images: torch.Tensor,
    regions: torch.Tensor,
    labels: Sequence[int],
    black: torch.Tensor,
    batch_size: int = 32,
) -> np.ndarray:
    """Probability of `labels[n]` for each image `images[n]` (N, C, H, W) with `regions[n]`
    (N, H, W, boolean) set to `black` (broadcastable to one image, e.g. (1, C, 1, 1)); (N,) float64.

    `images` is not modified. Runs N forward passes without gradients, `batch_size` at a time.
    """
    out = []
    index = torch.as_tensor(list(labels), dtype=torch.long)
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start : start + batch_size]
        mask = regions[start : start + batch_size].to(chunk.device)[:, None]
        batch = torch.where(mask, black.to(chunk.device, chunk.dtype), chunk)
        with torch.no_grad():
            probabilities = predict(batch)
        rows = torch.arange(chunk.shape[0])
        out.append(probabilities[rows, index[start : start + batch_size]].double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


@dataclass
class Drops:
    """Per (film, finding): the finding's probability before blanking, and after blanking the
    map's region and the random region (all in [0, 1]), with each region's share of the view."""

    labels: list[str]
    before: list[float]
    after_map: list[float]
    after_random: list[float]
    share: list[float]

    @classmethod
    def empty(cls) -> Drops:
        return cls([], [], [], [], [])

    def extend(self, labels, before, after_map, after_random, share) -> None:
        self.labels += list(labels)
        self.before += [float(v) for v in before]
        self.after_map += [float(v) for v in after_map]
        self.after_random += [float(v) for v in after_random]
        self.share += [float(v) for v in share]


def summarize_drops(drops: Drops, label_order: Sequence[str]) -> dict:
    """study.json's "faithfulness" entry: overall and per class (labels in `label_order`)."""
    labels = np.asarray(drops.labels, dtype=object)
    out = _summary(drops, np.ones(len(labels), dtype=bool))
    out["per_class"] = {
        label: _summary(drops, labels == label) for label in label_order if label in drops.labels
    }
    return out


def _summary(drops: Drops, keep: np.ndarray) -> dict:
    before = np.asarray(drops.before)[keep]
    by_map = before - np.asarray(drops.after_map)[keep]
    by_random = before - np.asarray(drops.after_random)[keep]
    n = int(keep.sum())
    nan = float("nan")
    mean_map = float(by_map.mean()) if n else nan
    mean_random = float(by_random.mean()) if n else nan
    map_larger = int((by_map > by_random + TIE).sum())
    random_larger = int((by_map < by_random - TIE).sum())
    decided = map_larger + random_larger
    return {
        "n": n,
        "mean_probability": float(before.mean()) if n else nan,
        "mean_drop": mean_map,
        "random_mean_drop": mean_random,
        "excess_drop": mean_map - mean_random if n else nan,
        # only where a random region lowers the score at all: a ratio to ~0 or below means nothing
        "ratio": mean_map / mean_random if n and mean_random > 0 else nan,
        "map_larger": map_larger,
        "random_larger": random_larger,
        # two-sided sign test of "the map's region drops more than the random region's"
        "p": float(binomtest(map_larger, decided, 0.5).pvalue) if decided else nan,
        "region_share": float(np.asarray(drops.share)[keep].mean()) if n else nan,
    }


REGION_SHARE = 0.125  # of the model view blanked per (film, finding) without outlines: a lung zone


def fixed_regions(share: float):
    """A `faithfulness_drops` region function: each labelled finding gets a region of `share` of
    the view (only its area is used: the map decides where it goes)."""

    def regions(case, geometry, size: int) -> dict[str, np.ndarray]:
        region = np.zeros((size, size), dtype=bool)
        region.ravel()[: max(1, round(share * size * size))] = True
        return dict.fromkeys(case.labels, region)

    return regions
