"""Holding a map to the lung fields: does its peak lie inside them, and what share of its mass does.

A chest finding sits inside the lung fields or at their edge. On a film without lesion outlines
the lung field is the truth that is always there: a map whose peak lies below the diaphragm, on the
spine or the heart, on a text marker or in the black padding shows a model reading something other
than the disease. For one map (the model's view, (S, S)) and the film's lung field in the same view:

- `inside`: the map's maximum (`localization.peak_of`: a class map's by its log-odds) lies in the
  field: the pointing game with the lung field as the truth; a constant map (no maximum) is
  outside;
- `share`: the share of the map's non-negative mass inside the field (energy in the field; 0 for
  an all-zero map);
- `place`: where the peak lies, in words: inside the lungs, at their edge (within `EDGE` of the
  view's side of the field, about one cell of a 16 x 16 map), below, above, between (the heart,
  mediastinum and spine), beside them (the chest wall and beyond), or in the padding around the
  film.

A map whose peak lies neither inside nor at the edge is `flagged`: `flag_line` is the one plain line
the app shows under it. The random control is scored the same way on the same films: for a
stationary random map its in-lung rate is the field's share of the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cxr_attention.core.data.preprocess import square_geometry
from cxr_attention.core.explain.localization import peak_of

EDGE = 1 / 16  # of the view's side: a peak this close to the field is "at the edge"
INSIDE, EDGE_PLACE = "inside the lungs", "at the edge of the lungs"
BELOW, ABOVE = "below the lungs", "above the lungs"
BETWEEN, BESIDE = "between the lungs", "beside the lungs"
PADDING, NOWHERE = "in the padding around the film", "nowhere (a flat map)"
PLACES = (INSIDE, EDGE_PLACE, BELOW, ABOVE, BETWEEN, BESIDE, PADDING, NOWHERE)
WHAT_LIES_THERE = {
    BELOW: "the diaphragm and abdomen",
    ABOVE: "the neck and shoulders",
    BETWEEN: "the heart, mediastinum and spine",
    BESIDE: "the chest wall and beyond",
    PADDING: "no film at all",
    NOWHERE: "no place in particular",
}


@dataclass(frozen=True)
class LungScore:
    """One map on one film, held to its lung field."""

    inside: bool  # the peak lies inside the field
    share: float  # share of the map's mass inside the field, in [0, 1]
    place: str  # where the peak lies (PLACES)

    @property
    def flagged(self) -> bool:
        """Peaks neither inside the lungs nor at their edge."""
        return self.place not in (INSIDE, EDGE_PLACE)


def film_area(height: int, width: int, size: int) -> np.ndarray:
    """bool (size, size): the view's pixels that hold the film, not the padding."""
    scale, top, left = square_geometry(height, width, size)
    area = np.zeros((size, size), bool)
    r0, c0 = round(top * scale), round(left * scale)
    area[r0 : r0 + max(1, round(height * scale)), c0 : c0 + max(1, round(width * scale))] = True
    return area


def peak_place(
    peak: tuple[int, int] | None, lungs: np.ndarray, area: np.ndarray | None = None
) -> str:
    """Where a peak (row, column) lies relative to the lung field (bool, the map's shape)."""
    if peak is None:
        return NOWHERE
    r, c = peak
    if lungs[r, c]:
        return INSIDE
    if not lungs.any():
        return PADDING if area is not None and not area[r, c] else BESIDE
    edge = max(1, round(EDGE * lungs.shape[0]))
    distance = cv2.distanceTransform((~lungs).astype(np.uint8), cv2.DIST_L2, 5)
    if distance[r, c] <= edge:
        return EDGE_PLACE
    if area is not None and not area[r, c]:
        return PADDING
    rows = np.flatnonzero(lungs.any(axis=1))
    if r > rows[-1]:
        return BELOW
    if r < rows[0]:
        return ABOVE
    cols = np.flatnonzero(lungs.any(axis=0))
    middle = (cols[0] + cols[-1]) / 2
    left = cols[cols < middle]
    right = cols[cols >= middle]
    if left.size and right.size and left[-1] < c < right[0]:
        return BETWEEN
    return BESIDE if c < cols[0] or c > cols[-1] else BETWEEN


def score_in_lungs(
    heatmap: np.ndarray,
    lungs: np.ndarray,
    area: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> LungScore:
    """One map (S, S) against the lung field (bool (S, S)); `area` is the film's part of the view;
    `order` ranks the map's places where it has ties (`localization.peak_of`)."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    lungs = np.asarray(lungs, dtype=bool)
    if lungs.shape != heatmap.shape:
        raise ValueError(f"lung field {lungs.shape} and map {heatmap.shape} differ in shape")
    peak = peak_of(heatmap, order)
    mass = np.clip(heatmap, 0.0, None)
    total = mass.sum()
    share = float(mass[lungs].sum() / total) if total > 0 else 0.0
    place = peak_place(peak, lungs, area)
    return LungScore(peak is not None and bool(lungs[peak]), share, place)


def summarize_lung_scores(scores: Sequence[LungScore]) -> dict:
    """{"n", "peak_inside" (share of maps whose peak is inside), "mass_inside" (mean share),
    "flagged" (share peaking neither inside nor at the edge), "places" {place: count}}."""
    n = len(scores)
    nan = float("nan")
    places = {place: sum(s.place == place for s in scores) for place in PLACES}
    return {
        "n": n,
        "peak_inside": float(np.mean([s.inside for s in scores])) if n else nan,
        "mass_inside": float(np.mean([s.share for s in scores])) if n else nan,
        "flagged": float(np.mean([s.flagged for s in scores])) if n else nan,
        "places": {place: count for place, count in places.items() if count},
    }


def flag_line(score: LungScore) -> str | None:
    """The plain line under a map that looks elsewhere; None for one that peaks in the lungs."""
    if not score.flagged:
        return None
    if score.place == NOWHERE:
        return "the map is flat: it points at no place, inside the lungs or out"
    return (
        f"peaks {score.place} ({WHAT_LIES_THERE[score.place]}): this model may be reading "
        "something other than the disease"
    )
