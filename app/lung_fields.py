"""The film's lung fields on the Explore page: found once per film, drawn on every map, and every map
held to them (issue 35, "In the app"). No Streamlit here: `app.models.film_fields` caches
`find_fields` per film, the panels draw what `hold_to_lungs` returns.

The fields come from the shipped lung model (`core.lungs.shipped`), in the square frame every
model's view shares (`core.lungs.segment.LungFields.in_view`). A model with a lung prior sees its
view restricted to them (`core.lungs.views.prior_input`): its map, the outline and the film's area
are all carried into that frame (`prior_truth`), so the map is held to the lungs where it was
computed. The score and its plain line are core's (`core.explain.lung_scores`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from cxr_attention.app.inference import ExplainedMap
from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import Radiograph
from cxr_attention.core.errors import CxrError, RadiographError
from cxr_attention.core.explain.lung_scores import (
    NOWHERE,
    LungScore,
    film_area,
    flag_line,
    score_in_lungs,
)
from cxr_attention.core.lungs.segment import LungFields, segment_lungs
from cxr_attention.core.lungs.views import prior_input, prior_truth

_LOCK = threading.Lock()  # one lung model serves every session: one film at a time


@dataclass(frozen=True)
class FilmFields:
    """One film's lung fields as the app knows them, or why it has none (one line)."""

    fields: LungFields | None  # None when there is no lung model to find them
    model: str = ""  # identity of the lung model that found them
    problem: str = ""  # why no outline is drawn ("" when the fields are plausible)

    @property
    def found(self) -> bool:
        return self.fields is not None and self.fields.plausible

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.fields.check.warnings if self.fields is not None else ()


def find_fields(radiograph: Radiograph) -> FilmFields:
    """The lung fields of one film by the shipped lung model; a refusal (a film without
    plausible lung fields) or a missing lung model is said in `problem`, never raised."""
    from cxr_attention.core.lungs.shipped import shipped_lung_model

    try:
        model = shipped_lung_model()
    except CxrError as exc:
        return FilmFields(None, "", f"No lung outline: {exc}.")
    with _LOCK:
        fields = segment_lungs(radiograph, model)
    if not fields.plausible:
        return FilmFields(
            fields,
            model.identity,
            f"The lung model finds no plausible lung fields on this film ({fields.check.reason}): "
            "no outline is drawn and no map is held to the lungs.",
        )
    return FilmFields(fields, model.identity)


def model_input(pixels: np.ndarray, config, film: FilmFields | None, source: str) -> np.ndarray:
    """The film as the model of `config` sees it: `model_view`, then its lung prior with the
    film's fields (`RadiographError` in one line when it has a prior and the film has no
    plausible fields)."""
    view = model_view(pixels, int(config.image_size))
    if config.lung_prior != "none" and (film is None or film.fields is None):
        why = film.problem if film is not None else "its lung fields were not looked for"
        raise RadiographError(f"{source}: this model reads the lung fields alone. {why}")
    return prior_input(view, config, film.fields if film is not None else None, source)


@dataclass(frozen=True)
class HeldToLungs:
    """One map on one film against the film's lung fields, in the frame the model saw."""

    outline: list[np.ndarray]  # closed (N, 2) x-y contours of the fields, in view pixels
    score: LungScore

    @property
    def flat(self) -> bool:
        """A map with no peak at all (constant: a Grad-CAM without positive evidence, say)."""
        return self.score.place == NOWHERE

    @property
    def line(self) -> str | None:
        """The plain line under a map that peaks outside the lungs (`core`'s `flag_line`); None
        for one that peaks inside or at their edge, and for a flat map, which peaks nowhere."""
        return None if self.flat else flag_line(self.score)


def fields_in_frame(
    fields: LungFields, config, film_shape: tuple[int, int], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """bool (size, size) each: the lung fields and the film's own area (not its padding) in the
    frame the model of `config` sees."""
    lungs = prior_truth(fields.in_view(size), config, fields)
    area = prior_truth(film_area(*film_shape, size), config, fields)
    return lungs, area


def hold_to_lungs(
    explained: ExplainedMap, fields: LungFields, config, film_shape: tuple[int, int]
) -> HeldToLungs:
    """A map (S, S) of the model of `config` held to the film's lung fields."""
    heat = explained.heat
    lungs, area = fields_in_frame(fields, config, film_shape, heat.shape[0])
    return HeldToLungs(outline_points(lungs), score_in_lungs(heat, lungs, area, explained.order))


def outline_points(mask: np.ndarray) -> list[np.ndarray]:
    """The outer contours of a bool mask as closed (N, 2) x-y point arrays."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    out = []
    for contour in contours:
        points = contour[:, 0, :].astype(np.float64)
        out.append(np.vstack([points, points[:1]]))
    return out
