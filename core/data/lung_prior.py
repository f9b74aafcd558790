"""The lung prior: what a model that learnt to look inside the lungs sees of a film.

A model trained with a lung prior (`ModelConfig.lung_prior`) never sees the film alone: its view
(`model_view`, the square padded film) is first restricted to the film's lung fields, as the lung
model finds them, in training, evaluation, `predict`, the study and the app alike:

- ``none``: the view as it is;
- ``mask``: everything farther than `MASK_MARGIN` of the view's side from the lung fields is set
  to black (the padding's value): the model cannot read the abdomen, the markers, the padding or
  the spine, only the lungs and their edge;
- ``crop``: the view is cut to the square box around the lung fields (with `CROP_MARGIN` around
  them), and that box is resized to the view's size: the model reads the thorax, the heart and
  mediastinum included, larger, without the rest of the film.

`prior_view` applies a prior to a view, `prior_region` carries any region of the view (a lesion
mask, the lung field itself) into the same frame, so that maps of a cropped view are scored where
they were computed.
"""

from __future__ import annotations

import cv2
import numpy as np

from cxr_attention.core.errors import ConfigError

LUNG_PRIORS = ("none", "mask", "crop")
MASK_MARGIN = 1 / 32  # of the view's side kept around the fields when masking (the pleura)
CROP_MARGIN = 1 / 16  # of the view's side around the fields' box when cropping


def check_prior(prior: str) -> str:
    if prior not in LUNG_PRIORS:
        raise ConfigError(f"unknown lung prior {prior!r}: choose one of {', '.join(LUNG_PRIORS)}")
    return prior


def kept_region(lungs: np.ndarray) -> np.ndarray:
    """bool (S, S): the lung fields widened by `MASK_MARGIN` (what `mask` keeps)."""
    size = lungs.shape[0]
    radius = max(1, round(MASK_MARGIN * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(lungs.astype(np.uint8), kernel) > 0


def crop_box(lungs: np.ndarray) -> tuple[int, int, int]:
    """(top, left, side) of the square box around the fields with `CROP_MARGIN`, inside the view
    where it fits (a box wider than the view is the whole view)."""
    size = lungs.shape[0]
    rows = np.flatnonzero(lungs.any(axis=1))
    cols = np.flatnonzero(lungs.any(axis=0))
    if rows.size == 0:
        return 0, 0, size
    margin = round(CROP_MARGIN * size)
    r0, r1 = rows[0] - margin, rows[-1] + 1 + margin
    c0, c1 = cols[0] - margin, cols[-1] + 1 + margin
    side = min(size, max(r1 - r0, c1 - c0))
    top = int(np.clip((r0 + r1 - side) // 2, 0, size - side))
    left = int(np.clip((c0 + c1 - side) // 2, 0, size - side))
    return top, left, int(side)


def prior_view(view: np.ndarray, lungs: np.ndarray, prior: str) -> np.ndarray:
    """A uint8 view (S, S) as a model of `prior` sees it, given the film's lung fields (bool
    (S, S) in the same view)."""
    if prior == "none":
        return view
    if lungs.shape != view.shape:
        raise ValueError(f"lung fields {lungs.shape} and view {view.shape} differ in shape")
    if prior == "mask":
        return np.where(kept_region(lungs), view, 0).astype(view.dtype)
    if prior == "crop":
        top, left, side = crop_box(lungs)
        box = view[top : top + side, left : left + side]
        return cv2.resize(box, view.shape[::-1], interpolation=cv2.INTER_AREA)
    raise ConfigError(f"unknown lung prior {prior!r}: choose one of {', '.join(LUNG_PRIORS)}")


def prior_region(region: np.ndarray, lungs: np.ndarray, prior: str) -> np.ndarray:
    """A bool region of the view (S, S) carried into a `prior` view's frame (the same for
    ``none`` and ``mask``; cut and resized like the view for ``crop``)."""
    if prior != "crop":
        return region
    top, left, side = crop_box(lungs)
    box = region[top : top + side, left : left + side].astype(np.float32)
    return cv2.resize(box, region.shape[::-1], interpolation=cv2.INTER_AREA) >= 0.5
