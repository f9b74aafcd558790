"""Lung fields of files: what `cxr-attention lungs FILM_OR_FOLDER... --out DIR` does, in one call.

Films are read as `predict` reads them (`load_radiograph`: PNG, JPEG, DICOM, EXIF orientation,
MONOCHROME1, the same size limits; folders walked the same way), segmented (`segment_lungs`) and
written as DIR/<stem>.png: 0 outside, 255 inside the lung fields, at the film's own size. A film
that cannot be read, or whose field is not plausible (`core.lungs.plausible`), is not written: its
result says why in one line. Two films of the same stem get `<stem>-2.png` and so on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cxr_attention.core.data.radiograph import iter_radiograph_files, load_radiograph
from cxr_attention.core.errors import ConfigError, RadiographError
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.segment import segment_lungs
from cxr_attention.core.lungs.shipped import shipped_lung_model


@dataclass(frozen=True)
class OutlineResult:
    """One film: where its mask went, or why it was not written."""

    source: str
    written: Path | None = None
    reason: str | None = None  # one line, starting with the file's name, when not written
    warnings: tuple[str, ...] = ()
    share: float = 0.0  # the field's share of the film's area


def unique_stems(paths: Iterable[Path]) -> dict[Path, str]:
    """Each path's output stem, numbered when two films share one."""
    stems: dict[Path, str] = {}
    used: set[str] = set()
    for path in paths:
        stem, n = path.stem, 2
        while stem in used:
            stem, n = f"{path.stem}-{n}", n + 1
        used.add(stem)
        stems[path] = stem
    return stems


def write_lung_masks(
    inputs: Iterable[str | Path],
    out: str | Path,
    model: LungModel | None = None,
    allow_any_modality: bool = False,
) -> Iterator[OutlineResult]:
    """Segment every film of `inputs` (files or folders) into `out`; one result per film."""
    model = model or shipped_lung_model()
    paths = list(iter_radiograph_files(inputs))
    if not paths:
        raise RadiographError(f"no PNG, JPEG or DICOM files found in {', '.join(map(str, inputs))}")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --out {out}: {exc.strerror or exc}") from None
    stems = unique_stems(paths)
    for path in paths:
        try:
            film = load_radiograph(path, allow_any_modality=allow_any_modality)
        except RadiographError as exc:
            yield OutlineResult(str(path), reason=str(exc))
            continue
        fields = segment_lungs(film, model)
        if not fields.plausible:
            yield OutlineResult(str(path), reason=f"{path}: {fields.check.reason}")
            continue
        target = out / f"{stems[path]}.png"
        ok, encoded = cv2.imencode(".png", fields.mask.astype(np.uint8) * 255)
        if not ok:
            raise ConfigError(f"could not encode the mask of {path.name} as PNG")
        target.write_bytes(encoded.tobytes())
        yield OutlineResult(str(path), target, None, fields.check.warnings, fields.check.share)
