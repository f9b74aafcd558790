"""The lung fields of a collection's films, as the truth every map on a real film is held to.

A film's field comes from the collection when it brings one (`own_lung_mask`: realdata-lungs'
`masks/` beside `films/`, the phantom's `lungs/` beside `images/`), else from the lung model. It is
kept in the square padded frame every view shares (`model_view`), at `VIEW` pixels, so any model's
view gets it by one resize (`FilmLungs.in_view`). A film whose field the lung model finds
implausible has none (`reason` says why) and is left out of the in-lung figures, and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import RadiographError
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.pairs import own_lung_mask
from cxr_attention.core.lungs.segment import resize_mask, segment_lungs

VIEW = 256  # side of the square frame the fields are kept in
OWN, SEGMENTED = "own", "segmented"


@dataclass(frozen=True)
class FilmLungs:
    """One film's lung field in the shared square frame, or why it has none."""

    view: np.ndarray | None  # bool (VIEW, VIEW), None when refused
    source: str  # OWN (the collection's mask) or SEGMENTED (the lung model's)
    reason: str | None = None

    def in_view(self, size: int) -> np.ndarray:
        """bool (size, size): the field in a model's view of the film."""
        if self.view is None:
            raise ValueError(f"this film has no lung field: {self.reason}")
        return resize_mask(self.view, size)


def film_lungs(
    path: str | Path,
    model: LungModel | Callable[[], LungModel] | None,
    own: bool = True,
    masks: Path | None = None,
) -> FilmLungs:
    """The film's own lung mask when its collection has one (and `own`), else the lung model's.

    With `masks`, the region is the file of the film's name in that folder instead (any region a
    user outlined: the opacities of a film, say); a film without one there has none."""
    if masks is not None:
        given = Path(masks) / Path(path).name
        if not given.is_file():
            return FilmLungs(None, OWN, f"no mask {given.name} in {masks}")
        region = model_view((load_radiograph(given).pixels > 0.5).astype(np.float32), VIEW) >= 128
        if not region.any():
            return FilmLungs(None, OWN, f"its mask {given.name} is empty")
        return FilmLungs(region, OWN)
    mask_path = own_lung_mask(path) if own else None
    # (`model` may be a function that loads it, so that films with their own masks need none)
    if mask_path is not None:
        mask = load_radiograph(mask_path).pixels > 0.5
        return FilmLungs(model_view(mask.astype(np.float32), VIEW) >= 128, OWN)
    if model is None:
        return FilmLungs(None, SEGMENTED, "no lung model given and no lung mask of its own")
    if callable(model):  # loaded only when a film lacks its own mask
        model = model()
    try:
        fields = segment_lungs(load_radiograph(path), model)
    except RadiographError as exc:
        return FilmLungs(None, SEGMENTED, str(exc))
    if not fields.plausible:
        return FilmLungs(None, SEGMENTED, fields.check.reason)
    return FilmLungs(fields.in_view(VIEW), SEGMENTED)


def lungs_source(found: Iterable[FilmLungs], model: LungModel | None) -> str:
    """Where the fields of a set of films came from, in words (for reports and pages)."""
    sources = {f.source for f in found if f.view is not None}
    identity = f" ({model.identity})" if isinstance(model, LungModel) and model.identity else ""
    if sources == {OWN}:
        return "the collection's own lung masks"
    if sources == {SEGMENTED}:
        return f"the lung model{identity}"
    if sources:
        return f"the collection's own lung masks where it has them, else the lung model{identity}"
    return "none"
