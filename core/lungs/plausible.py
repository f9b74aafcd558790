"""Whether what the segmenter found can be the lung fields of a frontal chest film.

A segmenter answers every image with some mask. On a blank image, a hand, a page or a CT slice
that mask means nothing, and must not be written or scored as lung fields. The checks, in the
segmenter's view (the film padded to a square), on what a frontal film's lungs always are:

- the film has contrast at all (a blank or flat image has no lungs to find);
- the field covers a plausible share of the film: 6-60 % of its area (adult and paediatric
  frontal films, padding excluded, lie around 15-40 %);
- it spans a plausible height: at least a quarter of the film's height;
- the segmenter is sure of it: at most a third of the pixels it calls lung, away from the field's
  edge, are uncertain (probability 0.2-0.8), and its mean probability inside is at least 0.75;
- two lungs, one each side of the field's middle; a single field is allowed with a warning
  (a collapsed or removed lung exists), not refused.

Rules on shape pass images a segmenter finds "lungs" in (a gradient, a checkerboard, an axial CT
slice): the lung model's description of the films it knows (`core.lungs.familiar`) refuses those
first, and warns of films merely unlike its own. The thresholds are written here and measured in
docs/lung-fields.md against the outlined films, children's films and generated non-chest images
(benchmarks/lung_plausibility.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from cxr_attention.core.data.preprocess import square_geometry

MIN_CONTRAST = 4.0  # grey levels (0-255) of standard deviation inside the film
SHARE_RANGE = (0.06, 0.60)  # of the film's own area
MIN_HEIGHT = 0.25  # of the film's height
MAX_UNCERTAIN = 1 / 3  # share of the field's pixels with probability in (0.2, 0.8)
MIN_CONFIDENCE = 0.75  # mean probability inside the field


@dataclass(frozen=True)
class FieldCheck:
    """The verdict on one film's field: `reason` says why it is refused (None when plausible)."""

    reason: str | None = None
    warnings: tuple[str, ...] = ()
    share: float = 0.0  # the field's share of the film's own area
    confidence: float = 0.0  # mean probability inside the field
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def plausible(self) -> bool:
        return self.reason is None


def film_region(view_size: int, film_shape: tuple[int, int]) -> tuple[slice, slice]:
    """The rows and columns of the view that hold the film (not its padding)."""
    height, width = film_shape
    scale, top, left = square_geometry(height, width, view_size)
    r0, c0 = round(top * scale), round(left * scale)
    return (
        slice(r0, r0 + max(1, round(height * scale))),
        slice(c0, c0 + max(1, round(width * scale))),
    )


def _inner(film: np.ndarray) -> np.ndarray:
    """The film without a 1/16 margin on each side: the blur where a resized film meets its
    padding is not contrast (a blank oblong image would otherwise pass as having some)."""
    dr, dc = film.shape[0] // 16, film.shape[1] // 16
    return film[dr : film.shape[0] - dr, dc : film.shape[1] - dc]


def check_fields(
    view: np.ndarray,
    probability: np.ndarray,
    mask: np.ndarray,
    film_shape: tuple[int, int],
    unfamiliar: float | None = None,
    limits: tuple[float, float] | None = None,
) -> FieldCheck:
    """The verdict on a field found in `view` (uint8 (S, S)); see the module docstring.

    `unfamiliar` is the film's score against the films the lung model knows and `limits` its
    (warn, refuse) thresholds (`core.lungs.familiar`)."""
    rows, cols = film_region(view.shape[0], film_shape)
    film = _inner(view[rows, cols]).astype(np.float32)
    inside = mask[rows, cols]
    area = max(inside.size, 1)
    share = float(inside.sum() / area)
    confidence = float(probability[mask].mean()) if mask.any() else 0.0
    uncertain = _uncertain_inside(probability, mask)
    height = _height_share(inside)
    figures = {
        "contrast": float(film.std()),
        "share": share,
        "height": height,
        "uncertain": uncertain,
        "confidence": confidence,
    }

    def refuse(reason: str) -> FieldCheck:
        return FieldCheck(reason, (), share, confidence, figures)

    if unfamiliar is not None:
        figures["unfamiliar"] = float(unfamiliar)
    if film.std() < MIN_CONTRAST:
        return refuse("the image is blank (no contrast): there are no lung fields to find")
    if limits is not None and unfamiliar is not None and unfamiliar > limits[1]:
        return refuse(
            f"the image is unlike any chest film the lung model knows (score {unfamiliar:.1f}, "
            f"refused above {limits[1]:.1f}): is it a frontal chest film?"
        )
    if not mask.any():
        return refuse("no lung fields found: is this a frontal chest film?")
    low, high = SHARE_RANGE
    if share < low:
        return refuse(
            f"what looks like lung covers {share:.0%} of the image (a frontal chest film's lungs "
            f"cover {low:.0%}-{high:.0%}): no plausible lung fields"
        )
    if share > high:
        return refuse(
            f"what looks like lung covers {share:.0%} of the image (at most {high:.0%} on a "
            "frontal chest film): no plausible lung fields"
        )
    if height < MIN_HEIGHT:
        return refuse(
            f"what looks like lung spans {height:.0%} of the image's height (at least "
            f"{MIN_HEIGHT:.0%} on a frontal chest film): no plausible lung fields"
        )
    if uncertain > MAX_UNCERTAIN or confidence < MIN_CONFIDENCE:
        return refuse(
            f"the segmenter is unsure ({uncertain:.0%} of the field uncertain, mean probability "
            f"{confidence:.2f}): no confident lung fields; is this a frontal chest film?"
        )
    warnings = []
    if limits is not None and unfamiliar is not None and unfamiliar > limits[0]:
        warnings.append(
            f"the film is unlike the films the lung model learnt (score {unfamiliar:.1f}, "
            f"usual up to {limits[0]:.1f}): check the outline"
        )
    if _regions(inside) < 2:
        warnings.append("one lung field found, not two: check the outline on the film")
    return FieldCheck(None, tuple(warnings), share, confidence, figures)


def _uncertain_inside(probability: np.ndarray, mask: np.ndarray) -> float:
    """Share of the field's pixels, away from its edge (a band of 1/32 of the view's side, where
    any segmenter is unsure), whose probability is between 0.2 and 0.8."""
    radius = max(1, round(mask.shape[0] / 32))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(mask.astype(np.uint8), kernel) > 0
    if not inner.any():
        return 1.0
    unsure = (probability > 0.2) & (probability < 0.8) & inner
    return float(unsure.sum() / inner.sum())


def _height_share(mask: np.ndarray) -> float:
    rows = np.flatnonzero(mask.any(axis=1))
    return float((rows[-1] - rows[0] + 1) / mask.shape[0]) if rows.size else 0.0


def _regions(mask: np.ndarray) -> int:
    """Regions of at least a tenth of the largest, in a field cut at its own middle column."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if areas.size == 0:
        return 0
    return int((areas >= areas.max() / 10).sum())
