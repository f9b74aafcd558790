"""The image under study: an upload (bytes, kept in memory) or a bundled sample with its truth.

Decoding goes through `core.data.radiograph.load_radiograph`, the one reader the CLI also uses;
ground truth is mapped into the model's view with `core.data.preprocess.square_geometry`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cxr_attention.core.data.preprocess import square_geometry
from cxr_attention.core.data.radiograph import Radiograph, load_radiograph
from cxr_attention.core.errors import RadiographError
from cxr_attention.core.explain.localization import Box as LocalBox
from cxr_attention.core.explain.localization import box_mask
from cxr_attention.core.explain.localize_run import mask_in_view
from cxr_attention.core.labels import canonical_label

SAMPLES_INDEX = "samples.json"


@dataclass(frozen=True)
class Box:
    label: str
    x: float  # pixels of the image's own frame
    y: float
    w: float
    h: float


@dataclass
class Sample:
    """A bundled radiograph and what is known to be in it."""

    file: Path
    labels: tuple[str, ...]  # findings present (empty = no finding)
    boxes: tuple[Box, ...] = ()
    masks: dict[str, Path] = field(default_factory=dict)  # label -> binary PNG at image size
    source: str = "phantom"
    note: str = ""

    @property
    def name(self) -> str:
        return self.file.name


@dataclass
class StudyImage:
    """What the Explore page works on: decoded pixels, metadata, digest and any ground truth."""

    name: str
    radiograph: Radiograph
    digest: str  # SHA-256 of the file bytes; keys the score caches
    sample: Sample | None = None

    @property
    def pixels(self) -> np.ndarray:
        return self.radiograph.pixels


def read_upload(name: str, data: bytes) -> StudyImage:
    """Decode an uploaded file (never written to disk); `RadiographError` if it is unusable."""
    radiograph = load_radiograph(data, name=name)
    return StudyImage(name, radiograph, hashlib.sha256(data).hexdigest())


def read_sample(sample: Sample) -> StudyImage:
    data = sample.file.read_bytes()
    radiograph = load_radiograph(data, name=sample.name)
    return StudyImage(sample.name, radiograph, hashlib.sha256(data).hexdigest(), sample)


def list_samples(folder: Path) -> list[Sample]:
    """The samples listed in `folder/samples.json` whose image exists (none without an index).

    The index is what `assets/make_samples.py` writes: {"note": ..., "default": file, "samples":
    [{"image": file, "findings": [label, ...], "boxes": {label: [x, y, w, h] or a list of them},
    "masks": {label: file}}, ...]}, paths relative to `folder`, boxes in the image's own pixels.
    """
    index = folder / SAMPLES_INDEX
    if not index.is_file():
        return []
    try:
        data = json.loads(index.read_text())
    except json.JSONDecodeError as exc:
        raise RadiographError(
            f"{index} is not valid JSON ({exc.msg}); regenerate it with assets/make_samples.py"
        ) from None
    samples = []
    for entry in data.get("samples", []):
        file = folder / entry["image"]
        if not file.is_file():
            continue
        boxes = []
        for label, given in (entry.get("boxes") or {}).items():
            for x, y, w, h in [given] if given and not isinstance(given[0], list) else given:
                boxes.append(Box(canonical_label(label), x, y, w, h))
        masks = {canonical_label(k): folder / v for k, v in (entry.get("masks") or {}).items()}
        samples.append(
            Sample(
                file=file,
                labels=tuple(canonical_label(x) for x in entry.get("findings") or []),
                boxes=tuple(boxes),
                masks={k: v for k, v in masks.items() if v.is_file()},
                source="phantom" if "phantom" in str(data.get("note", "phantom")) else "sample",
                note=str(data.get("note", "")),
            )
        )
    return samples


def default_sample(folder: Path, samples: list[Sample]) -> Sample | None:
    """The sample the Explore page opens on: samples.json's "default" when listed, else the first
    with a finding (a lesion to point at, not the normal film), else the first; None when none."""
    index = folder / SAMPLES_INDEX
    try:
        data = json.loads(index.read_text()) if index.is_file() else {}
    except json.JSONDecodeError:
        data = {}  # list_samples says what is wrong with the index
    wanted = data.get("default") if isinstance(data, dict) else None
    by_name = {s.name: s for s in samples}
    if wanted in by_name:
        return by_name[wanted]
    return next((s for s in samples if s.labels), samples[0] if samples else None)


def boxes_in_view(
    boxes: tuple[Box, ...], height: int, width: int, size: int
) -> list[tuple[str, float, float, float, float]]:
    """Boxes (label, x, y, w, h) moved from the image frame into the (size, size) model view."""
    scale, top, left = square_geometry(height, width, size)
    return [
        (b.label, (b.x + left) * scale, (b.y + top) * scale, b.w * scale, b.h * scale)
        for b in boxes
    ]


def truth_in_view(
    sample: Sample | None, label: str, height: int, width: int, size: int
) -> np.ndarray | None:
    """Where `label`'s lesion lies in the (size, size) model view, bool, or None when the sample
    has no truth for it: its mask as `localize` reads masks, else its boxes."""
    if sample is None:
        return None
    if label in sample.masks:
        mask = mask_in_view(sample.masks[label], size)
        return mask if mask.any() else None
    own = tuple(b for b in sample.boxes if b.label == label)
    boxes = [LocalBox(x, y, w, h) for _, x, y, w, h in boxes_in_view(own, height, width, size)]
    return box_mask(boxes, (size, size)) if boxes else None


def mask_outlines(
    masks: dict[str, Path], height: int, width: int, size: int
) -> list[tuple[str, np.ndarray]]:
    """Outer contours of each mask as (label, (N, 2) x-y points) in model-view pixels."""
    scale, top, left = square_geometry(height, width, size)
    out = []
    for label, path in masks.items():
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            continue
        contours, _ = cv2.findContours(
            (mask > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        for contour in contours:
            points = contour[:, 0, :].astype(np.float64)
            points = np.vstack([points, points[:1]])  # closed outline
            out.append(
                (
                    label,
                    np.column_stack(((points[:, 0] + left) * scale, (points[:, 1] + top) * scale)),
                )
            )
    return out


def metadata_table(study: StudyImage, show_identifiers: bool) -> list[tuple[str, str]]:
    """(field, value) rows for display; patient identifiers only when asked."""
    meta = study.radiograph.meta
    rows = [
        (k, ", ".join(map(str, v)) if isinstance(v, list) else str(v))
        for k, v in meta.display_dict(include_patient=False).items()
        if v not in (None, "")
    ]
    if meta.patient:
        if show_identifiers:
            rows += [(f"patient: {k}", str(v)) for k, v in meta.patient.items()]
        else:
            rows.append(("patient identifiers", f"{len(meta.patient)} hidden"))
    return rows
