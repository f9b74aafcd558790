"""Reading one radiograph: PNG, JPEG or DICOM bytes -> a float image in [0, 1] plus metadata.

`load_radiograph` is the single entry point used by the dataset reader, `predict` and the app. It

- sniffs the format from the bytes (never trusts the suffix alone), so an extensionless DICOM from a
  PACS export or a PNG named `.jpg` is read correctly;
- reads the size from the header (PNG IHDR, JPEG SOF, DICOM Rows/Columns) and refuses images under
  `MIN_SIDE` pixels or over `MAX_PIXELS` *before* decoding, so a decompression bomb never allocates;
- returns `Radiograph.pixels`, float32 (H, W) in [0, 1] with 0 = black (air dark, bone bright), whatever
  the bit depth, colour model or DICOM photometric interpretation;
- raises `RadiographError` with one line naming the file and the reason for anything it cannot use.

Intensity mapping: 8-bit PNG/JPEG are divided by 255; 16-bit PNG by 2**bits - 1 where `bits` is the
PNG `sBIT` chunk when present, else 12 when every value fits 12 bits (12-bit detectors stored in
16-bit PNGs), else 16. Colour images become BT.601 luminance; alpha is dropped. DICOM rules are in
`core.data.dicom`. JPEG EXIF orientation is applied (as viewers do); PNG carries none.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cxr_attention.core.data.radiograph_meta import (
    LUMA_RGB,
    MAX_PIXELS,
    MIN_SIDE,
    RadiographMeta,
    check_size,
)
from cxr_attention.core.errors import RadiographError

# The metadata record and size limits live a level down (shared with core.data.dicom without an
# import circle); callers keep importing them from here.
__all__ = [
    "JPEG_SIGNATURE",
    "LUMA_RGB",
    "MAX_PIXELS",
    "MIN_SIDE",
    "PNG_SIGNATURE",
    "SUPPORTED_SUFFIXES",
    "Radiograph",
    "RadiographMeta",
    "check_size",
    "iter_radiograph_files",
    "jpeg_header",
    "load_radiograph",
    "looks_like_dicom",
    "png_header",
    "sniff_format",
]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

# Formats people upload by mistake, recognised so the message can say what the file is.
_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"GIF8", "GIF"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"RIFF", "RIFF (WebP?)"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)


@dataclass
class Radiograph:
    """A decoded radiograph: `pixels` float32 (H, W) in [0, 1], 0 = black (air dark).

    When the file stores plain 8-bit gray (most PNG and JPEG films), `gray8` keeps those bytes and
    `pixels` (exactly `gray8 / 255`) is only computed when asked for: the cache and the model view
    work on the bytes directly, which saves a float copy of every film.
    """

    meta: RadiographMeta
    gray8: np.ndarray | None = None  # uint8 (H, W) when the file holds 8-bit gray, else None
    _pixels: np.ndarray | None = field(default=None, repr=False)

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = self.gray8.astype(np.float32) / 255.0
        return self._pixels

    @property
    def height(self) -> int:
        return int((self.gray8 if self._pixels is None else self._pixels).shape[0])

    @property
    def width(self) -> int:
        return int((self.gray8 if self._pixels is None else self._pixels).shape[1])


def load_radiograph(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    allow_any_modality: bool = False,
) -> Radiograph:
    """Read a PNG, JPEG or DICOM radiograph from a path or from bytes (an upload).

    `name` labels messages and `meta.source_name` (default: the path, or "upload" for bytes).
    `allow_any_modality` lets DICOM modalities that are not projection radiographs (CT, MR, US, ...)
    through. Raises `RadiographError` (one line, starting with the name) for anything unusable.
    """
    data, name = _read_source(source, name)
    if not data:
        raise RadiographError(f"{name}: the file is empty (0 bytes)")
    kind = sniff_format(data, name)
    if kind == "dicom":
        from cxr_attention.core.data.dicom import read_dicom  # pydicom is only imported when needed

        pixels, meta = read_dicom(data, name, allow_any_modality=allow_any_modality)
    elif kind == "png":
        pixels, meta = _read_png(data, name)
    else:
        pixels, meta = _read_jpeg(data, name)
    if pixels.dtype == np.uint8:
        return Radiograph(meta, gray8=np.ascontiguousarray(pixels))
    return Radiograph(meta, _pixels=np.ascontiguousarray(pixels, dtype=np.float32))


def _read_source(source: str | Path | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "upload"
    path = Path(source)
    name = name or str(path)
    if not path.exists():
        raise RadiographError(f"{name}: file not found")
    if path.is_dir():
        raise RadiographError(f"{name}: is a folder; give an image file (PNG, JPEG or DICOM)")
    try:
        return path.read_bytes(), name
    except OSError as exc:
        raise RadiographError(f"{name}: cannot be read ({exc.strerror or exc})") from None


def sniff_format(data: bytes, name: str = "upload") -> str:
    """ "png", "jpeg" or "dicom" from the leading bytes; `RadiographError` for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if looks_like_dicom(data, name):
        return "dicom"
    for magic, what in _OTHER_FORMATS:
        if data.startswith(magic):
            raise RadiographError(
                f"{name}: {what} files are not supported; convert it to PNG (or give the DICOM)"
            )
    head = data[:512]
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        raise RadiographError(f"{name}: is a text file, not an image; give a PNG, JPEG or DICOM")
    raise RadiographError(f"{name}: not an image (not PNG, JPEG or DICOM)")


def looks_like_dicom(data: bytes, name: str = "") -> bool:
    """True for a DICOM Part 10 file ("DICM" after the 128-byte preamble), or for a `.dcm` file
    without preamble that starts with a group 0x0002/0x0008 element (raw dataset)."""
    if data[128:132] == b"DICM":
        return True
    suffix = Path(name).suffix.lower()
    return suffix in (".dcm", ".dicom") and data[:2] in (b"\x02\x00", b"\x08\x00")


def png_header(data: bytes, name: str = "upload") -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise RadiographError(f"{name}: corrupt or truncated PNG (no IHDR header)")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def _png_sbit(data: bytes) -> int | None:
    """The largest significant-bits value of the sBIT chunk, if the PNG has one before IDAT."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"sBIT":
            values = data[pos + 8 : pos + 8 + length]
            return max(values) if values else None
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def _read_png(data: bytes, name: str) -> tuple[np.ndarray, RadiographMeta]:
    width, height, depth, colour = png_header(data, name)
    check_size(width, height, name)
    if data.rfind(b"IEND") < 0:
        raise RadiographError(f"{name}: truncated PNG (no IEND chunk); the file is incomplete")
    image = _imdecode(data, cv2.IMREAD_UNCHANGED, name, "PNG")
    bits = 16 if image.dtype == np.uint16 else 8
    if image.dtype == np.uint16:
        sbit = _png_sbit(data)
        if sbit and 8 < sbit < 16:
            bits = sbit
        elif sbit is None and int(image.max()) < 4096:
            bits = 12
    pixels, photometric = _to_luminance(image)
    if not (bits == 8 and pixels.dtype == np.uint8):  # 8-bit gray stays bytes (see Radiograph)
        pixels = np.clip(pixels.astype(np.float32) / float(2**bits - 1), 0.0, 1.0)
    meta = RadiographMeta(
        format="png",
        width=width,
        height=height,
        source_name=name,
        bits_stored=bits,
        photometric=photometric,
        intensity=f"value / {2**bits - 1}",
    )
    return pixels, meta


def jpeg_header(data: bytes, name: str = "upload") -> tuple[int, int, int, int]:
    """(width, height, precision bits, components) from a JPEG's SOF segment."""
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise RadiographError(f"{name}: corrupt JPEG (bad marker at byte {pos})")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 10 > n:
                break
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            return width, height, precision, components
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise RadiographError(f"{name}: corrupt or truncated JPEG (no frame header)")


def _read_jpeg(data: bytes, name: str) -> tuple[np.ndarray, RadiographMeta]:
    width, height, precision, components = jpeg_header(data, name)
    check_size(width, height, name)
    if data.rfind(b"\xff\xd9") < 0:
        raise RadiographError(f"{name}: truncated JPEG (no end marker); the file is incomplete")
    # ANYCOLOR|ANYDEPTH keeps gray as gray and applies EXIF orientation (UNCHANGED would not).
    image = _imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH, name, "JPEG")
    bits = precision if image.dtype == np.uint16 else 8
    pixels, photometric = _to_luminance(image)
    if not (bits == 8 and pixels.dtype == np.uint8):  # 8-bit gray stays bytes (see Radiograph)
        pixels = np.clip(pixels.astype(np.float32) / float(2**bits - 1), 0.0, 1.0)
    h, w = pixels.shape
    meta = RadiographMeta(
        format="jpeg",
        width=w,
        height=h,
        source_name=name,
        bits_stored=bits,
        photometric=photometric if components > 1 else "MONOCHROME2",
        intensity=f"value / {2**bits - 1}",
    )
    return pixels, meta


def _imdecode(data: bytes, flags: int, name: str, what: str) -> np.ndarray:
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:  # OpenCV's own limits (CV_IO_MAX_IMAGE_PIXELS) and decoder errors
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "decoder error"
        raise RadiographError(f"{name}: corrupt {what} ({first[:100]})") from None
    if image is None or image.size == 0:
        raise RadiographError(f"{name}: corrupt {what}; the decoder could not read its pixels")
    return image


def _to_luminance(image: np.ndarray) -> tuple[np.ndarray, str]:
    """(H, W[, C]) in OpenCV's BGR(A) order -> (H, W) gray in stored units.

    Gray input keeps its dtype (uint8 stays uint8); true colour becomes float32 BT.601 luminance.
    """
    if image.ndim == 2:
        return image, "MONOCHROME2"
    channels = image.shape[2]
    if channels == 1:
        return image[..., 0], "MONOCHROME2"
    photometric = "RGBA" if channels == 4 else "RGB"
    b, g, r = (image[..., i] for i in range(3))
    # Gray stored as colour (the RGBA NIH originals): take a channel, exactly, not a weighted sum.
    if np.array_equal(b, g) and np.array_equal(g, r):
        return np.ascontiguousarray(r), photometric
    b, g, r = (c.astype(np.float32) for c in (b, g, r))
    return LUMA_RGB[0] * r + LUMA_RGB[1] * g + LUMA_RGB[2] * b, photometric


def iter_radiograph_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every radiograph file under `paths`, in a stable order, each once.

    Files named explicitly are yielded whatever their suffix (reading them says what is wrong, and
    a missing path is yielded too so the caller reports it). Folders are searched recursively for
    `SUPPORTED_SUFFIXES` (any case) and for files of any other name with a DICOM preamble (PACS
    exports); hidden files and folders and `DICOMDIR` index files are skipped.
    """
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        found = _folder_files(path) if path.is_dir() else [path]
        for file in found:
            key = file.resolve() if file.exists() else file
            if key not in seen:
                seen.add(key)
                yield file


def _folder_files(folder: Path) -> list[Path]:
    out = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative) or not path.is_file():
            continue
        # PACS exports name files by UID ("1.2.840...3", no real suffix) or ".IMA": any file with
        # a DICOM preamble counts, whatever its name.
        if path.suffix.lower() in SUPPORTED_SUFFIXES or (
            path.name.upper() != "DICOMDIR" and _has_dicom_preamble(path)
        ):
            out.append(path)
    return out


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False
