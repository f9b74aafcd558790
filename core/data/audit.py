"""What decoding every film of a dataset shows: what the reader's listing cannot.

- EXIF orientation: a JPEG whose EXIF says "rotate" is shown turned by viewers; the reader applies
  it too (`load_radiograph`), so model and viewer see the same film. Counted, as a copy that
  strips EXIF would turn those films.
- RGB files of a grey film (three equal channels): read as grey, exactly. Colour files (channels
  differ) are read as BT.601 luminance and named: a colour image is rarely a radiograph.
- Films that cannot be decoded (truncated, corrupt): named and left out.

`cxr-attention data` runs it on any dataset; `fit` runs it on real collections up to
`AUDIT_LIMIT` films (a phantom is drawn by this project, and ChestX-ray14's 112,120 PNGs take
minutes: `cxr-attention data` checks them when asked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cxr_attention.core.data.index import DatasetIndex, Finding
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import RadiographError

AUDIT_LIMIT = 20_000  # films `fit` decodes before training; beyond, `cxr-attention data` does
EXIF_ORIENTATION = 0x0112  # the EXIF tag; 1 means "as stored"


@dataclass
class FilmAudit:
    """Image ids by what decoding them showed."""

    decoded: int = 0
    rotated: list[str] = field(default_factory=list)  # EXIF orientation other than 1
    rgb_grey: list[str] = field(default_factory=list)  # 3 equal channels
    colour: list[str] = field(default_factory=list)  # channels differ
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (image id, why)

    def findings(self) -> list[Finding]:
        out = [Finding("decoded", self.decoded, f"films decoded: {self.decoded:,}")]
        if self.rotated:
            out.append(
                Finding(
                    "exif_orientation",
                    len(self.rotated),
                    f"{len(self.rotated):,} JPEGs whose EXIF orientation turns them",
                    tuple(self.rotated[:3]),
                    "turned as viewers show them",
                )
            )
        if self.rgb_grey:
            out.append(
                Finding(
                    "rgb_grey",
                    len(self.rgb_grey),
                    f"{len(self.rgb_grey):,} RGB files of a grey film (three equal channels)",
                    tuple(self.rgb_grey[:3]),
                    "read as grey, exactly",
                )
            )
        if self.colour:
            out.append(
                Finding(
                    "colour",
                    len(self.colour),
                    f"{len(self.colour):,} colour images (channels differ): rarely radiographs",
                    tuple(self.colour[:3]),
                    "read as luminance",
                )
            )
        if self.unreadable:
            out.append(
                Finding(
                    "undecodable",
                    len(self.unreadable),
                    f"{len(self.unreadable):,} films that cannot be decoded: "
                    + "; ".join(why for _, why in self.unreadable[:3]),
                    tuple(image_id for image_id, _ in self.unreadable),
                    "left out",
                )
            )
        return out


def exif_orientation(path: str | Path) -> int:
    """A JPEG's EXIF orientation (1-8; 1 for none or for other formats), from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return int(image.getexif().get(EXIF_ORIENTATION, 1)) if image.format == "JPEG" else 1
    except (OSError, UnidentifiedImageError, ValueError):
        return 1


def audit_films(index: DatasetIndex, progress: Callable[[int], object] | None = None) -> FilmAudit:
    """Decode every film of `index` once (`load_radiograph`, as training does) and sort them."""
    audit = FilmAudit()
    for image_id, path in zip(index.items["image_id"], index.items["path"], strict=True):
        try:
            film = load_radiograph(path, name=image_id)
        except RadiographError as exc:
            audit.unreadable.append((image_id, str(exc)))
            continue
        audit.decoded += 1
        if film.meta.photometric in ("RGB", "RGBA"):
            (audit.rgb_grey if film.gray8 is not None else audit.colour).append(image_id)
        if film.meta.format == "jpeg" and exif_orientation(path) != 1:
            audit.rotated.append(image_id)
        if progress is not None:
            progress(1)
    return audit


def check_films(index: DatasetIndex, limit: int = AUDIT_LIMIT) -> DatasetIndex:
    """`index` with the films that cannot be decoded left out and the audit's findings added,
    for real collections of at most `limit` films (see the module docstring)."""
    if index.source in ("phantom", "chestxray14") or len(index.items) > limit:
        return index
    audit = audit_films(index)
    index.findings += audit.findings()
    if audit.unreadable:
        bad = {image_id for image_id, _ in audit.unreadable}
        index.items = index.items[~index.items["image_id"].isin(bad)].reset_index(drop=True)
    return index
