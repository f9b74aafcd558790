"""Lung fields of one film: the segmenter's view, its mask at the film's own size, its check.

The segmenter reads the film exactly as the classifiers do (`core.data.preprocess.model_view`:
padded to a square with black, centred, resized), at its own `image_size`. Its probability map is
therefore in the same frame as any classifier's view of the same film, at another size:
`LungFields.in_view(size)` is the lung field in a classifier's view, and `mask` undoes the padding
and the resizing to give the field at the film's own size (what `cxr-attention lungs` writes).

Clean-up: the field is the (at most) two largest connected regions above the threshold, each at
least a tenth of the larger, with holes filled: lungs are two solid regions, and a speck on a
marker or in the abdomen is not lung.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cxr_attention.core.data.preprocess import model_view, square_geometry
from cxr_attention.core.data.radiograph import Radiograph
from cxr_attention.core.lungs.familiar import lung_pass
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.plausible import FieldCheck, check_fields


@dataclass(frozen=True)
class LungFields:
    """One film's lung fields as the segmenter found them."""

    view_probability: np.ndarray  # float32 (S, S): P(lung field) in the segmenter's view
    view_mask: np.ndarray  # bool (S, S): the cleaned field in that view
    film_shape: tuple[int, int]  # (H, W) of the film
    check: FieldCheck

    @property
    def plausible(self) -> bool:
        return self.check.plausible

    @property
    def mask(self) -> np.ndarray:
        """bool (H, W): the field at the film's own size."""
        return film_mask(self.view_probability, self.view_mask, self.film_shape)

    def in_view(self, size: int) -> np.ndarray:
        """bool (size, size): the field in a classifier's view of the same film."""
        return resize_mask(self.view_mask, size)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A square bool mask at another side: pixels at least half covered."""
    if mask.shape[0] == size:
        return mask.copy()
    coverage = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return coverage >= 0.5


def clean_field(probability: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The (at most) two largest regions above `threshold`, each >= 1/10 of the larger, filled."""
    binary = (probability >= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros(probability.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1][:2]
    keep = [i + 1 for i in order if areas[i] >= areas[order[0]] / 10]
    field = np.isin(labels, keep).astype(np.uint8)
    # fill holes: what the background reaches from the border is outside, the rest is inside
    padded = np.pad(field, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood == 0)[1:-1, 1:-1]
    return field.astype(bool) | holes


def film_mask(
    view_probability: np.ndarray, view_mask: np.ndarray, film_shape: tuple[int, int]
) -> np.ndarray:
    """The view's field at the film's own size: padding cut away, probabilities resized, then the
    same clean-up restricted to the regions the view kept."""
    height, width = film_shape
    size = view_probability.shape[0]
    scale, top, left = square_geometry(height, width, size)
    r0, c0 = round(top * scale), round(left * scale)
    r1, c1 = r0 + max(1, round(height * scale)), c0 + max(1, round(width * scale))
    inside = np.where(view_mask, view_probability, np.minimum(view_probability, 0.49))
    crop = inside[r0:r1, c0:c1].astype(np.float32)
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    return clean_field(resized)


def film_view(film: Radiograph | np.ndarray, size: int) -> np.ndarray:
    """The film as the segmenter (and every classifier) sees it: uint8 (size, size)."""
    return model_view(film, size)


def segment_views(
    views: Sequence[np.ndarray] | np.ndarray, model: LungModel
) -> tuple[np.ndarray, np.ndarray | None]:
    """Lung-field probabilities (B, S, S) float32 for uint8 views (B, S, S) at the model's size,
    and their unfamiliarity scores (B,) when the model describes the films it knows."""
    probability, features = lung_pass(model, np.stack(list(views)))
    scores = model.familiarity.scores(features) if model.familiarity is not None else None
    return probability.numpy(), scores


def fields_from_view(
    view: np.ndarray,
    probability: np.ndarray,
    film_shape: tuple[int, int],
    model: LungModel,
    score: float | None = None,
) -> LungFields:
    """`LungFields` from a film's view, the segmenter's probability for it and its
    unfamiliarity score."""
    mask = clean_field(probability, model.config.threshold)
    known = model.familiarity
    limits = (known.warn, known.refuse) if known is not None and score is not None else None
    check = check_fields(view, probability, mask, film_shape, score, limits)
    return LungFields(probability.astype(np.float32), mask, tuple(film_shape), check)


def segment_lungs(film: Radiograph | np.ndarray, model: LungModel) -> LungFields:
    """The lung fields of one film (a `Radiograph`, or (H, W) float [0, 1] / uint8 pixels)."""
    pixels = film.gray8 if isinstance(film, Radiograph) and film.gray8 is not None else film
    if isinstance(pixels, Radiograph):
        pixels = pixels.pixels
    shape = (int(pixels.shape[0]), int(pixels.shape[1]))
    view = film_view(pixels, model.image_size)
    probability, scores = segment_views(view[None], model)
    score = None if scores is None else float(scores[0])
    return fields_from_view(view, probability[0], shape, model, score)
