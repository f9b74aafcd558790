"""Scoring a map against the truth: pointing game, IoBB accuracy (Wang et al. 2017), energy in box.

All scores are computed in the model view (the square image the model sees), with truth boxes mapped
there by `box_to_view` (the same padding and scale as `core.data.preprocess.square_geometry`) and
phantom masks passed through `model_view` themselves. A pixel (row r, column c) covers
[c, c + 1) x [r, r + 1); it belongs to a box when its centre (c + 0.5, r + 0.5) lies inside.

- Pointing game (Zhang et al. 2016, without tolerance margin): a hit when the map's maximum lies in
  a truth box of that label (any of them). A constant map (no maximum) is a miss; on a flat top the
  maximal pixel nearest the top's centroid counts (see `map_maximum`). Where the map has an order
  of its own (a class map's log-odds, `Explanation.ranked`), the peak is that order's maximum.
- IoBB accuracy at T (Wang et al., CVPR 2017, Table 4): the map is thresholded, each connected
  component (8-connectivity) becomes a detected box, and a truth box is hit when some detected box
  has intersection / detected-box area > T.
  Map threshold (our choice, `MAP_THRESHOLD`): 0.5 of the map's own range, min + 0.5 (max - min).
  Wang et al. scaled heatmaps to [0, 255] and used fixed thresholds of 60 and 180; 0.5 (about 128)
  lies between them, and a range-relative level makes attention gates (values near 0.5) and
  max-scaled Grad-CAM comparable.
- Energy in box: the share of the map's total (non-negative) mass inside the label's boxes; 0 for
  an all-zero map (every measure treats an empty map as a miss).

Against a phantom mask the same scores use the mask's pixels: the maximum inside the mask, the mask's
share of each detected box (intersection / detected-box area) for IoBB, and the energy on the mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

IOBB_THRESHOLDS: tuple[float, ...] = (0.1, 0.25, 0.5)
MAP_THRESHOLD = 0.5


@dataclass(frozen=True)
class Box:
    """An axis-aligned box (x, y, w, h) in pixels of some frame (x to the right, y down)."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    def intersection(self, other: Box) -> float:
        dx = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        dy = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return max(dx, 0.0) * max(dy, 0.0)


@dataclass(frozen=True)
class MapScore:
    """One truth box (or mask) scored against one map."""

    pointing: bool  # map maximum inside the truth
    iobb: dict[float, bool]  # T -> some detected box has IoBB > T
    energy: float  # share of the map's mass inside the truth, in [0, 1] (0 for an all-zero map)
    best_iobb: float  # largest IoBB over the detected boxes


def box_to_view(box: Box, geometry: tuple[float, int, int]) -> Box:
    """A box of the original image mapped into the model view, given `square_geometry(h, w, size)`."""
    scale, top, left = geometry
    return Box((box.x + left) * scale, (box.y + top) * scale, box.w * scale, box.h * scale)


def box_mask(boxes: Iterable[Box], shape: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W): pixels whose centre lies inside any of the boxes."""
    rows = np.arange(shape[0]) + 0.5
    cols = np.arange(shape[1]) + 0.5
    mask = np.zeros(shape, dtype=bool)
    for b in boxes:
        inside_r = (rows >= b.y) & (rows <= b.y + b.h)
        inside_c = (cols >= b.x) & (cols <= b.x + b.w)
        mask |= inside_r[:, None] & inside_c[None, :]
    return mask


def map_maximum(heatmap: np.ndarray) -> tuple[int, int] | None:
    """(row, column) where the map points: its maximum; None for a constant map (nowhere).

    A coarse map upsampled bilinearly has a flat top: for a cell on the border it runs out to the
    image edge (interpolation clamps there), so the first maximal pixel in raster order would sit
    in a corner. We take the maximal pixel nearest the centroid of all maximal pixels instead.
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if not np.isfinite(heatmap).all():
        return None
    lo, hi = float(heatmap.min()), float(heatmap.max())
    if hi <= lo:
        return None
    rows, cols = np.nonzero(heatmap >= hi - 1e-6 * (hi - lo))
    nearest = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return int(rows[nearest]), int(cols[nearest])


def detected_boxes(heatmap: np.ndarray, map_threshold: float = MAP_THRESHOLD) -> list[Box]:
    """Boxes around the connected regions where the map reaches min + t (max - min).

    A constant map detects nothing. Components are 8-connected; each box spans whole pixels.
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    lo, hi = float(heatmap.min()), float(heatmap.max())
    if not hi > lo:
        return []
    binary = (heatmap >= lo + map_threshold * (hi - lo)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    return [
        Box(
            float(stats[i, cv2.CC_STAT_LEFT]),
            float(stats[i, cv2.CC_STAT_TOP]),
            float(stats[i, cv2.CC_STAT_WIDTH]),
            float(stats[i, cv2.CC_STAT_HEIGHT]),
        )
        for i in range(1, count)  # 0 is the background
    ]


def iobb(detected: Box, truth: Box) -> float:
    """Intersection over the detected box's area (Wang et al. 2017); 0 for an empty box."""
    area = detected.area
    return truth.intersection(detected) / area if area > 0 else 0.0


def _energy(heatmap: np.ndarray, region: np.ndarray) -> float:
    # An empty map (Grad-CAM whose ReLU removed everything) shows nothing inside: 0, like a miss.
    mass = np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, None)
    total = mass.sum()
    return float(mass[region].sum() / total) if total > 0 else 0.0


def _hits(best: float, thresholds: Sequence[float]) -> dict[float, bool]:
    return {t: best > t for t in thresholds}


def peak_of(heatmap: np.ndarray, order: np.ndarray | None = None) -> tuple[int, int] | None:
    """Where a map peaks: the maximum of its `order` (the map's own ranking of places, same
    shape) when given, else of the map itself (`map_maximum`)."""
    if order is not None and np.shape(order) != np.shape(heatmap):
        raise ValueError(f"order shape {np.shape(order)} differs from map shape {heatmap.shape}")
    return map_maximum(heatmap if order is None else order)


def score_boxes(
    heatmap: np.ndarray,
    boxes: Sequence[Box],
    map_threshold: float = MAP_THRESHOLD,
    thresholds: Sequence[float] = IOBB_THRESHOLDS,
    order: np.ndarray | None = None,
) -> list[MapScore]:
    """Score each truth box of one label on one image (boxes in the map's pixel frame).

    Pointing game and energy use all the label's boxes together (the map's maximum in any of
    them, the mass in their union); IoBB is per box. `order`: see `peak_of`.
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if not boxes:
        return []
    region = box_mask(boxes, heatmap.shape)
    peak = peak_of(heatmap, order)
    pointing = peak is not None and bool(region[peak])
    energy = _energy(heatmap, region)
    found = detected_boxes(heatmap, map_threshold)
    scores = []
    for truth in boxes:
        best = max((iobb(d, truth) for d in found), default=0.0)
        scores.append(MapScore(pointing, _hits(best, thresholds), energy, best))
    return scores


def score_mask(
    heatmap: np.ndarray,
    mask: np.ndarray,
    map_threshold: float = MAP_THRESHOLD,
    thresholds: Sequence[float] = IOBB_THRESHOLDS,
    order: np.ndarray | None = None,
) -> MapScore:
    """Score one truth mask (boolean, the map's shape) against one map; `order`: see `peak_of`."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != heatmap.shape:
        raise ValueError(f"mask shape {mask.shape} differs from map shape {heatmap.shape}")
    peak = peak_of(heatmap, order)
    pointing = peak is not None and bool(mask[peak])
    best = 0.0
    for d in detected_boxes(heatmap, map_threshold):
        x0, y0 = int(d.x), int(d.y)
        inside = mask[y0 : y0 + int(d.h), x0 : x0 + int(d.w)].sum()
        best = max(best, float(inside) / d.area)
    return MapScore(pointing, _hits(best, thresholds), _energy(heatmap, mask), best)


def summarize_scores(
    scores: Sequence[MapScore], thresholds: Sequence[float] = IOBB_THRESHOLDS
) -> dict:
    """Mean scores over truth boxes, in the schema of localization.json's per-class entries.

    {"n_boxes", "pointing_game", "iobb_acc": {"0.1": x, ...}, "energy_in_box"}; NaN without boxes.
    """
    n = len(scores)
    nan = float("nan")
    return {
        "n_boxes": n,
        "pointing_game": float(np.mean([s.pointing for s in scores])) if n else nan,
        "iobb_acc": {
            _key(t): float(np.mean([s.iobb[t] for s in scores])) if n else nan for t in thresholds
        },
        "energy_in_box": float(np.mean([s.energy for s in scores])) if n else nan,
    }


def _key(t: float) -> str:
    return f"{t:g}"
