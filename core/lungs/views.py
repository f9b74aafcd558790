"""A film as a model with a lung prior sees it, wherever a film is scored.

`predict`, evaluation, the study, `localize` and the app all make a model's view the same way:
`model_view` for every model, then, for a model whose checkpoint records a lung prior, the prior
applied with the film's lung fields as the lung model finds them (`core.data.lung_prior`). A film whose
lung fields are not plausible cannot be shown to such a model: it is refused in one line.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr_attention.core.data.lung_prior import prior_region, prior_view
from cxr_attention.core.data.preprocess import model_view, square_geometry
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import RadiographError
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.segment import LungFields, segment_lungs


def needs_lungs(configs: Iterable) -> bool:
    """Whether any of these model configs reads the film through a lung prior."""
    return any(getattr(c, "lung_prior", "none") != "none" for c in configs)


def lung_model_for(configs: Iterable, lung_model: LungModel | None = None) -> LungModel | None:
    """The lung model these models need (the shipped one unless given), or None when none has a
    prior; a one-line warning when it is not the lung model a model learnt on."""
    from cxr_attention.core.lungs.shipped import shipped_lung_model

    configs = list(configs)
    if not needs_lungs(configs):
        return None
    model = lung_model or shipped_lung_model()
    learnt = {c.lung_model for c in configs if c.lung_prior != "none" and c.lung_model}
    for identity in sorted(learnt - {model.identity}):
        warnings.warn(
            f"a model learnt on the lung fields of lung model {identity}; they are found here by "
            f"{model.identity}, so its inputs may differ slightly from its training films",
            stacklevel=2,
        )
    return model


def refusal(source: str, fields: LungFields | None) -> str:
    """Why a film cannot be shown to a model with a lung prior."""
    reason = fields.check.reason if fields is not None else "its lung fields were not found"
    return f"{source}: {reason} (a model with a lung prior reads the lung fields alone)"


def prior_input(
    view: np.ndarray, config, fields: LungFields | None, source: str = "film"
) -> np.ndarray:
    """A uint8 view (S, S) as the model of `config` sees it; `fields` are the film's lung fields
    (needed, and plausible, when the config records a lung prior)."""
    if config.lung_prior == "none":
        return view
    if fields is None or not fields.plausible:
        raise RadiographError(refusal(source, fields))
    return prior_view(view, fields.in_view(view.shape[0]), config.lung_prior)


def prior_truth(region: np.ndarray, config, fields: LungFields | None) -> np.ndarray:
    """A bool region of the plain view carried into the frame the model of `config` sees."""
    if config.lung_prior == "none" or fields is None:
        return region
    return prior_region(region, fields.in_view(region.shape[0]), config.lung_prior)


@dataclass(frozen=True)
class FilmInput:
    """One film ready for one model: what the model sees, and how to carry truth into it."""

    view: np.ndarray  # uint8 (S, S): the model's input view (its lung prior applied)
    geometry: tuple[float, int, int]  # the plain view's padding and scale (`square_geometry`)
    shape: tuple[int, int]  # (H, W) of the film
    config: object  # the model's ModelConfig
    fields: LungFields | None  # the film's lung fields, when the model has a prior

    def truth(self, region: np.ndarray) -> np.ndarray:
        """A bool region of the plain view carried into the model's frame."""
        return prior_truth(region, self.config, self.fields)


def film_input(path: str | Path, config, lung_model: LungModel | None) -> FilmInput:
    """Read a film and make the view the model of `config` sees (`lung_model` finds the fields of
    a model with a lung prior). Raises `RadiographError` for an unreadable film or one without
    plausible lung fields for a prior model."""
    film = load_radiograph(path)
    size = int(config.image_size)
    plain = model_view(film, size)
    fields = None
    if config.lung_prior != "none":
        if lung_model is None:
            raise RadiographError(f"{path}: a model with a lung prior needs the lung model")
        fields = segment_lungs(film, lung_model)
    view = prior_input(plain, config, fields, str(path))
    geometry = square_geometry(film.height, film.width, size)
    return FilmInput(view, geometry, (film.height, film.width), config, fields)
