"""What every radiograph reader shares: the metadata record and the size limits.

A level below `core.data.radiograph` (PNG/JPEG and the entry point) and `core.data.dicom`, so that
both import these without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cxr_attention.core.errors import RadiographError

MIN_SIDE = 32  # pixels; smaller images carry no usable anatomy
MAX_PIXELS = 50_000_000  # a 7,000 x 7,000 film; larger header claims are refused before decoding
# BT.601 luma weights, the ones OpenCV and PIL use for RGB -> gray.
LUMA_RGB = (0.299, 0.587, 0.114)


@dataclass
class RadiographMeta:
    """What is known about a radiograph besides its pixels; shown by the app, logged by `predict`.

    `patient` holds every identifying field found (DICOM PatientName, PatientID, PatientBirthDate,
    AccessionNumber, InstitutionName, StudyDate, ...) apart from the rest, so a display can hide
    them with one switch. PNG and JPEG files carry none.
    """

    format: str  # "png", "jpeg" or "dicom"
    width: int  # pixels (columns)
    height: int  # pixels (rows)
    source_name: str  # the path or upload name the image came from
    bits_stored: int = 8  # significant bits per sample in the file
    photometric: str = "MONOCHROME2"  # DICOM term; PNG/JPEG: MONOCHROME2, RGB or RGBA
    modality: str | None = None  # DICOM Modality (CR, DX, ...); None for PNG/JPEG
    view_position: str | None = None  # DICOM ViewPosition (PA, AP, LL, ...)
    body_part: str | None = None  # DICOM BodyPartExamined
    pixel_spacing: tuple[float, float] | None = None  # (row, column) mm per pixel
    transfer_syntax: str | None = None  # DICOM transfer syntax name
    intensity: str = ""  # how stored values became [0, 1], e.g. "window C=40 W=400"
    patient: dict[str, str] = field(default_factory=dict)  # identifying fields, kept apart

    @property
    def bits(self) -> int:
        """Alias of `bits_stored`."""
        return self.bits_stored

    def display_dict(self, include_patient: bool = False) -> dict[str, object]:
        """The non-identifying fields (and the identifying ones only when asked) as plain data."""
        out: dict[str, object] = {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bits_stored": self.bits_stored,
            "photometric": self.photometric,
            "modality": self.modality,
            "view_position": self.view_position,
            "body_part": self.body_part,
            "pixel_spacing": list(self.pixel_spacing) if self.pixel_spacing else None,
            "transfer_syntax": self.transfer_syntax,
            "intensity": self.intensity,
        }
        if include_patient:
            out["patient"] = dict(self.patient)
        return out


def check_size(width: int, height: int, name: str) -> None:
    """Refuse sizes a radiograph cannot have; called with the header's claim, before decoding."""
    if width <= 0 or height <= 0:
        raise RadiographError(f"{name}: corrupt header (image size {width} x {height})")
    if width * height > MAX_PIXELS:
        raise RadiographError(
            f"{name}: header claims {width} x {height} pixels ({width * height / 1e6:.0f} MP), over "
            f"the {MAX_PIXELS / 1e6:.0f} MP limit; refused before decoding (downscale it first)"
        )
    if min(width, height) < MIN_SIDE:
        raise RadiographError(
            f"{name}: image is {width} x {height} pixels; at least {MIN_SIDE} px per side is needed"
        )
