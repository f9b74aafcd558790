"""DICOM radiographs: header checks before decoding, then stored values -> display values in [0, 1].

The pipeline follows the DICOM grayscale standard display chain (PS3.3 C.11, PS3.4 N.2):

1. refuse what is not one projection radiograph: no pixel data, several frames, a modality that is
   not CR/DX/DR/RG/OT (CT, MR, US, ...) unless forced, Rows x Columns outside the size limits
   (checked on the header, before any decompression);
2. decode through pydicom (compressed syntaxes through the pylibjpeg plugins: JPEG baseline and
   lossless, JPEG-LS, JPEG 2000, RLE), keeping only the `BitsStored` significant bits;
3. the Modality LUT (Rescale Slope/Intercept, or a Modality LUT Sequence);
4. the VOI transform: the first VOI LUT when present, else the first Window Center/Width (LINEAR,
   LINEAR_EXACT or SIGMOID), else - for 8-bit unrescaled data, which are already display values -
   value / 255, else a robust 0.5-99.5 percentile window;
5. MONOCHROME1 inverted so that air is dark, as in every other image this project reads.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from cxr_attention.core.data.radiograph_meta import LUMA_RGB, RadiographMeta, check_size
from cxr_attention.core.errors import RadiographError

# Projection radiography modalities (PS3.3 C.7.3.1.1.1): CR computed, DX digital, RG radiographic
# imaging; DR is not a standard code but some vendors write it; OT (other) and an absent modality are
# what secondary captures and converted films carry.
PROJECTION_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "OT", ""})
MODALITY_NAMES = {
    "CT": "computed tomography",
    "MR": "magnetic resonance",
    "US": "ultrasound",
    "PT": "PET",
    "NM": "nuclear medicine",
    "MG": "mammography",
    "XA": "angiography",
    "RF": "fluoroscopy",
    "IO": "intra-oral radiography",
    "PX": "panoramic dental radiography",
    "SR": "structured report",
    "SEG": "segmentation",
}
_WARNINGS_LOCK = threading.Lock()
# Syntaxes whose frames are JPEG marker streams ending in EOI: baseline, extended, lossless (.57,
# .70) and JPEG-LS (.80, .81). JPEG 2000 and HTJ2K codestreams end differently.
JPEG_MARKER_SYNTAXES = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 57, 70, 80, 81))
PERCENTILE_WINDOW = (0.5, 99.5)  # robust window when the file carries none

# Identifying attributes, kept apart from the display metadata so an app can hide them.
PATIENT_FIELDS = (
    "PatientName",
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientAddress",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StudyDate",
    "StudyTime",
    "AcquisitionDate",
    "SeriesDate",
    "StudyID",
    "StudyDescription",
    "SeriesDescription",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)


def read_dicom(
    data: bytes, name: str, allow_any_modality: bool = False
) -> tuple[np.ndarray, RadiographMeta]:
    """DICOM bytes -> (float32 (H, W) in [0, 1], air dark; metadata). `RadiographError` if unusable."""
    with collected_warnings() as caught:
        ds = parse_dataset(data, name)
        if "PixelData" not in ds and any("End of file" in str(w.message) for w in caught):
            raise RadiographError(f"{name}: truncated DICOM (the file ends inside its pixel data)")
        check_dataset(ds, name, allow_any_modality)
        stored = decode_stored_values(ds, name)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if samples > 1:
        pixels, intensity = _colour_to_display(stored, ds)
    else:
        values = modality_values(stored, ds)
        pixels, intensity = display_values(values, ds)
        if photometric == "MONOCHROME1":
            pixels = 1.0 - pixels
            intensity += ", MONOCHROME1 inverted"
    rows, columns = stored.shape[:2]
    meta = RadiographMeta(
        format="dicom",
        width=int(columns),
        height=int(rows),
        source_name=name,
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8),
        photometric=photometric,
        modality=_text(ds, "Modality"),
        view_position=_text(ds, "ViewPosition"),
        body_part=_text(ds, "BodyPartExamined"),
        pixel_spacing=_pixel_spacing(ds),
        transfer_syntax=_transfer_syntax_name(ds),
        intensity=intensity,
        patient=patient_fields(ds),
    )
    return pixels.astype(np.float32), meta


@contextmanager
def collected_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect pydicom's warnings about damaged files instead of printing them, so a bad file
    gives one clear message. `catch_warnings` swaps process-wide state: hence the lock."""
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def parse_dataset(data: bytes, name: str) -> Any:
    """The pydicom Dataset (pixel data still encoded)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    force = data[128:132] != b"DICM"  # a raw dataset without the Part 10 preamble
    try:
        return pydicom.dcmread(io.BytesIO(data), force=force)
    except InvalidDicomError:
        raise RadiographError(f"{name}: not a valid DICOM file") from None
    except (EOFError, struct.error, ValueError, KeyError, TypeError, OverflowError, OSError) as exc:
        raise RadiographError(f"{name}: corrupt or truncated DICOM ({_first_line(exc)})") from None


def check_dataset(ds: Any, name: str, allow_any_modality: bool = False) -> None:
    """Refuse, from the header alone, what is not one projection radiograph of a sane size."""
    if "PixelData" not in ds:
        what = (
            "a DICOMDIR index"
            if "DirectoryRecordSequence" in ds
            else "not an image, or the file is truncated"
        )
        raise RadiographError(f"{name}: DICOM without pixel data ({what}); give an image file")
    modality = (_text(ds, "Modality") or "").upper()
    if modality not in PROJECTION_MODALITIES and not allow_any_modality:
        described = (
            f"{modality} ({MODALITY_NAMES[modality]})" if modality in MODALITY_NAMES else modality
        )
        raise RadiographError(
            f"{name}: modality {described} is not a projection radiograph; only CR/DX/RG films "
            "are supported (force with --any-modality / allow_any_modality=True)"
        )
    try:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        raise RadiographError(f"{name}: corrupt DICOM header (no valid Rows/Columns)") from None
    if frames > 1:
        raise RadiographError(
            f"{name}: multi-frame DICOM ({frames} frames); export the single radiograph frame"
        )
    check_size(columns, rows, name)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        raise RadiographError(f"{name}: palette-colour DICOM is not a radiograph")


def decode_stored_values(ds: Any, name: str) -> np.ndarray:
    """The stored pixel values (H, W) or (H, W, 3), only the `BitsStored` significant bits."""
    syntax = _transfer_syntax_name(ds) or "unknown transfer syntax"
    _check_jpeg_frame_complete(ds, name)
    try:
        array = ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:
        if _decoder_available(ds):  # the plugin is there, so the data are damaged
            raise RadiographError(
                f"{name}: corrupt {syntax} pixel data ({_first_line(exc)})"
            ) from None
        raise RadiographError(
            f"{name}: cannot decode {syntax}: no decoder installed; install the pylibjpeg "
            "plugins (pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg) or convert the "
            "file to uncompressed DICOM"
        ) from None
    except (ValueError, EOFError, struct.error, KeyError, TypeError, AttributeError) as exc:
        raise RadiographError(
            f"{name}: corrupt or truncated DICOM pixel data ({_first_line(exc)})"
        ) from None
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise RadiographError(f"{name}: unexpected DICOM pixel array shape {array.shape}")
    return mask_bits_stored(array, ds)


def _check_jpeg_frame_complete(ds: Any, name: str) -> None:
    """libjpeg decodes a cut JPEG frame without complaint (grey below the cut): refuse a JPEG-family
    frame that lacks its end-of-image marker, as for plain JPEG files."""
    from pydicom.encaps import generate_frames

    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None or str(uid) not in JPEG_MARKER_SYNTAXES:
        return
    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except (StopIteration, ValueError, struct.error, TypeError) as exc:
        raise RadiographError(
            f"{name}: corrupt encapsulated pixel data ({_first_line(exc)})"
        ) from None
    if not frame.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise RadiographError(
            f"{name}: truncated {uid.name} frame (no end marker); the file is incomplete"
        )


def mask_bits_stored(array: np.ndarray, ds: Any) -> np.ndarray:
    """Keep the low `BitsStored` bits (overlay or garbage bits above them are dropped), with the
    sign extended for signed data (PixelRepresentation 1)."""
    if not np.issubdtype(array.dtype, np.integer):
        return array
    allocated = int(ds.get("BitsAllocated", array.dtype.itemsize * 8) or 8)
    stored = int(ds.get("BitsStored", allocated) or allocated)
    if stored >= array.dtype.itemsize * 8 or stored <= 0:
        return array
    values = array.astype(np.int64) & ((1 << stored) - 1)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        sign = 1 << (stored - 1)
        values = (values ^ sign) - sign
    return values


def modality_values(stored: np.ndarray, ds: Any) -> np.ndarray:
    """Stored values -> modality values (Rescale Slope/Intercept or the Modality LUT), float64."""
    from pydicom.pixels import apply_modality_lut

    return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)


def display_values(values: np.ndarray, ds: Any) -> tuple[np.ndarray, str]:
    """Modality values -> [0, 1] through the file's VOI transform or a robust window."""
    if ds.get("VOILUTSequence"):
        return _apply_voi_lut(values, ds), "VOI LUT"
    centers, widths = _floats(ds.get("WindowCenter")), _floats(ds.get("WindowWidth"))
    if centers and widths and widths[0] > 0:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        out = window(values, centers[0], widths[0], function)
        return out, f"window C={centers[0]:g} W={widths[0]:g} {function}"
    bits = int(ds.get("BitsStored", 8) or 8)
    rescaled = "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds
    identity = (
        float(ds.get("RescaleSlope", 1) or 1) == 1
        and float(ds.get("RescaleIntercept", 0) or 0) == 0
    )
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    if bits <= 8 and not signed and (not rescaled or identity) and "ModalityLUTSequence" not in ds:
        # 8-bit unrescaled data (secondary captures, converted films) are display values already.
        top = float(2**bits - 1)
        return np.clip(values / top, 0.0, 1.0), f"value / {top:g}"
    return percentile_window(values), "percentile window {:g}-{:g}%".format(*PERCENTILE_WINDOW)


def window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM windowing (PS3.3 C.11.2.1.2) onto [0, 1].

    LINEAR: below c - 0.5 - (w - 1) / 2 -> 0, above c - 0.5 + (w - 1) / 2 -> 1, linear between;
    LINEAR_EXACT: (x - c) / w + 0.5 clipped; SIGMOID: 1 / (1 + exp(-4 (x - c) / w)).
    """
    x = np.asarray(values, dtype=np.float64)
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0)
    if width <= 1:  # LINEAR with width 1 is a threshold at c - 0.5
        return (x > center - 0.5).astype(np.float64)
    return np.clip((x - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def percentile_window(values: np.ndarray, percentiles: tuple[float, float] = PERCENTILE_WINDOW):
    """Linear window from the low to the high percentile of the values, onto [0, 1]."""
    x = np.asarray(values, dtype=np.float64)
    low, high = np.percentile(x, percentiles)
    if high <= low:  # nearly constant image: fall back to the full range
        low, high = float(x.min()), float(x.max())
    if high <= low:
        return np.zeros_like(x)
    return np.clip((x - low) / (high - low), 0.0, 1.0)


def _apply_voi_lut(values: np.ndarray, ds: Any) -> np.ndarray:
    """The first VOI LUT applied, its output range mapped onto [0, 1]."""
    from pydicom.pixels import apply_voi

    entries, first_mapped = (int(v) for v in ds.VOILUTSequence[0].LUTDescriptor[:2])
    looked_up = np.asarray(apply_voi(np.rint(values).astype(np.int64), ds), dtype=np.float64)
    # The LUT's own output range is the display range (its nominal bit depth is often overstated).
    table = apply_voi(first_mapped + np.arange(entries or 2**16, dtype=np.int64), ds)
    low, high = float(np.min(table)), float(np.max(table))
    if high <= low:
        return np.zeros_like(looked_up)
    return np.clip((looked_up - low) / (high - low), 0.0, 1.0)


def _colour_to_display(stored: np.ndarray, ds: Any) -> tuple[np.ndarray, str]:
    """RGB DICOM (pydicom converts YBR to RGB) -> BT.601 luminance / (2**bits - 1)."""
    rgb = stored.astype(np.float64)
    bits = int(ds.get("BitsStored", 8) or 8)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        gray = rgb[..., 0]
    else:
        gray = rgb @ np.asarray(LUMA_RGB)
    return np.clip(gray / float(2**bits - 1), 0.0, 1.0), "RGB luminance"


def patient_fields(ds: Any) -> dict[str, str]:
    """Every identifying attribute present and non-empty, as text."""
    out = {}
    for keyword in PATIENT_FIELDS:
        value = ds.get(keyword)
        if value is not None and str(value).strip():
            out[keyword] = str(value).strip()
    return out


def _pixel_spacing(ds: Any) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _floats(ds.get(keyword))
        if len(values) >= 2 and values[0] > 0 and values[1] > 0:
            return values[0], values[1]
    return None


def _transfer_syntax_name(ds: Any) -> str | None:
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return getattr(uid, "name", None) or (str(uid) if uid else None)


def _floats(value: Any) -> list[float]:
    """A DS value or multi-value as floats; [] when absent or unparsable."""
    if value is None or value == "":
        return []
    iterable = hasattr(value, "__iter__") and not isinstance(value, str | bytes)
    items = list(value) if iterable else [value]
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            return []
    return out


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    return str(value).strip() or None


def _decoder_available(ds: Any) -> bool:
    from pydicom.pixels.decoders.base import get_decoder

    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        return uid is not None and get_decoder(uid).is_available
    except NotImplementedError:
        return False


def _first_line(exc: BaseException, limit: int = 100) -> str:
    """The gist of a library's error: first line, first clause, at most `limit` characters."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    text = text.splitlines()[0].split(" - ")[0].rstrip(" .:")
    return text if len(text) <= limit else text[: limit - 3] + "..."
