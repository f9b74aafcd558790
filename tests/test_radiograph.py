"""Reading PNG and JPEG radiographs: exact intensities, colour handling, refusals, folder search."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_attention.core.data.radiograph import (
    MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    Radiograph,
    iter_radiograph_files,
    load_radiograph,
)
from cxr_attention.core.errors import RadiographError

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def png_bytes(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


def jpeg_bytes(image: np.ndarray, quality: int = 95) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def handmade_png(width: int, height: int, rows: bytes, extra: bytes = b"") -> bytes:
    """An 8-bit gray PNG assembled chunk by chunk (so headers can lie about the size)."""
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    idat = chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + ihdr + extra + idat + chunk(b"IEND", b"")


def ramp(height: int = 40, width: int = 48, top: int = 255, dtype=np.uint8) -> np.ndarray:
    values = np.linspace(0, top, height * width).round().astype(dtype)
    return values.reshape(height, width)


def refusal(source, match: str, **kwargs) -> str:
    with pytest.raises(RadiographError, match=match) as info:
        load_radiograph(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- intensities -----------------------------------------------------------------------------


def test_8bit_gray_png_is_value_over_255(tmp_path: Path) -> None:
    image = ramp()
    path = tmp_path / "film.png"
    path.write_bytes(png_bytes(image))
    radiograph = load_radiograph(path)
    assert isinstance(radiograph, Radiograph)
    assert radiograph.pixels.dtype == np.float32 and radiograph.pixels.shape == (40, 48)
    np.testing.assert_array_equal(radiograph.pixels, (image / 255.0).astype(np.float32))
    meta = radiograph.meta
    assert (meta.format, meta.width, meta.height, meta.bits_stored) == ("png", 48, 40, 8)
    assert meta.photometric == "MONOCHROME2" and meta.source_name == str(path)
    assert meta.patient == {}


def test_16bit_png_uses_full_range(tmp_path: Path) -> None:
    image = ramp(top=65535, dtype=np.uint16)
    radiograph = load_radiograph(png_bytes(image), name="deep.png")
    assert radiograph.meta.bits_stored == 16
    np.testing.assert_allclose(radiograph.pixels, image / 65535.0, atol=1e-7)
    assert radiograph.pixels[-1, -1] == 1.0 and radiograph.pixels[0, 0] == 0.0


def test_16bit_png_holding_12bit_values_is_scaled_by_4095() -> None:
    # Detectors write 12-bit data into 16-bit PNGs; /65535 would give a nearly black film.
    image = ramp(top=4000, dtype=np.uint16)
    radiograph = load_radiograph(png_bytes(image))
    assert radiograph.meta.bits_stored == 12
    np.testing.assert_allclose(radiograph.pixels, image / 4095.0, atol=1e-7)


def test_png_sbit_chunk_sets_the_significant_bits() -> None:
    image = ramp(top=900, dtype=np.uint16)  # 10-bit data, declared by sBIT
    data = png_bytes(image)
    sbit = chunk(b"sBIT", bytes([10]))
    data = data[:33] + sbit + data[33:]  # right after IHDR
    radiograph = load_radiograph(data)
    assert radiograph.meta.bits_stored == 10
    np.testing.assert_allclose(radiograph.pixels, image / 1023.0, atol=1e-7)


def test_rgb_png_becomes_bt601_luminance() -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :, 2] = 255  # OpenCV order is BGR: this is pure red
    image[:16, :, :] = (0, 255, 0)  # top half pure green
    radiograph = load_radiograph(png_bytes(image))
    assert radiograph.meta.photometric == "RGB"
    assert radiograph.pixels[20, 5] == pytest.approx(0.299, abs=1e-6)
    assert radiograph.pixels[5, 5] == pytest.approx(0.587, abs=1e-6)


def test_rgba_png_drops_alpha_and_keeps_gray_exact() -> None:
    gray = ramp(48, 40)
    alpha = np.where(np.arange(40) < 20, 0, 255).astype(np.uint8)[None, :].repeat(48, 0)
    rgba = np.dstack([gray, gray, gray, alpha])
    radiograph = load_radiograph(png_bytes(rgba), name="rgba.png")
    assert radiograph.meta.photometric == "RGBA"
    # Transparent pixels keep their gray value: alpha is not composited.
    np.testing.assert_array_equal(radiograph.pixels, (gray / 255.0).astype(np.float32))


def test_gray_alpha_png_reads_as_gray() -> None:
    import io

    from PIL import Image

    gray = ramp(36, 36)
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([gray, np.full_like(gray, 128)]), mode="LA").save(buffer, "PNG")
    radiograph = load_radiograph(buffer.getvalue())
    np.testing.assert_array_equal(radiograph.pixels, (gray / 255.0).astype(np.float32))


def test_jpeg_gray_and_colour(tmp_path: Path) -> None:
    gray = cv2.GaussianBlur(ramp(64, 64), (5, 5), 0)
    path = tmp_path / "film.JPG"
    path.write_bytes(jpeg_bytes(gray))
    radiograph = load_radiograph(path)
    assert radiograph.meta.format == "jpeg" and radiograph.meta.photometric == "MONOCHROME2"
    assert np.abs(radiograph.pixels - gray / 255.0).max() < 4 / 255  # lossy, but close
    colour = load_radiograph(jpeg_bytes(np.dstack([gray] * 3)))
    assert colour.pixels.shape == (64, 64)
    assert np.abs(colour.pixels - gray / 255.0).mean() < 2 / 255


def test_format_is_sniffed_not_taken_from_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "actually_a_png.jpg"
    path.write_bytes(png_bytes(ramp()))
    assert load_radiograph(path).meta.format == "png"


@pytest.mark.skipif(not REALDATA.exists(), reason="../shared/realdata not present")
def test_real_rgba_nih_original() -> None:
    path = REALDATA / "images" / "00001369_000.png"
    radiograph = load_radiograph(path)
    assert radiograph.meta.photometric == "RGBA" and radiograph.pixels.shape == (1024, 1024)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.shape == (1024, 1024, 4)
    np.testing.assert_array_equal(radiograph.pixels, (raw[..., 0] / 255.0).astype(np.float32))


@pytest.mark.skipif(not REALDATA.exists(), reason="../shared/realdata not present")
def test_real_gray_nih_png() -> None:
    path = REALDATA / "images" / "00000001_000.png"
    radiograph = load_radiograph(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.ndim == 2 and radiograph.meta.photometric == "MONOCHROME2"
    np.testing.assert_array_equal(radiograph.pixels, (raw / 255.0).astype(np.float32))
    # A chest film: the lung fields (mid-left, mid-right) are darker than the spine between them.
    p = radiograph.pixels
    assert p[450:550, 250:350].mean() < p[450:550, 480:540].mean()


# --- refusals --------------------------------------------------------------------------------


def test_refuses_missing_empty_and_folder(tmp_path: Path) -> None:
    message = refusal(tmp_path / "nope.png", "file not found")
    assert message.startswith(str(tmp_path / "nope.png"))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    refusal(empty, "empty")
    refusal(b"", "empty")
    refusal(tmp_path, "folder")


def test_refuses_what_is_not_an_image(tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_text("patient list\nname,id\n")
    refusal(notes, "text file, not an image")
    refusal(bytes(range(256)) * 4, "not an image")
    refusal(b"II*\x00" + bytes(300), "TIFF files are not supported; convert it to PNG")
    refusal(b"%PDF-1.7\n" + bytes(300), "PDF")


def test_refuses_truncated_and_corrupt_png() -> None:
    data = png_bytes(ramp(64, 64))
    refusal(data[: len(data) // 2], "truncated PNG")
    refusal(data[:20], "corrupt or truncated PNG")
    # Flip bytes inside the compressed pixels: the CRC and zlib stream no longer check out.
    broken = bytearray(data)
    start = data.index(b"IDAT") + 8
    broken[start : start + 12] = bytes(12)
    refusal(bytes(broken), "corrupt PNG")


def test_refuses_truncated_and_corrupt_jpeg() -> None:
    data = jpeg_bytes(ramp(64, 64))
    refusal(data[: len(data) // 2], "truncated JPEG")
    refusal(b"\xff\xd8\xff\xe0" + bytes(40), "corrupt")


def test_refuses_images_under_32_px() -> None:
    refusal(png_bytes(ramp(31, 200)), r"200 x 31 pixels; at least 32 px")
    refusal(jpeg_bytes(ramp(64, 20)), "at least 32 px")
    assert load_radiograph(png_bytes(ramp(32, 32))).pixels.shape == (32, 32)


def test_refuses_decompression_bombs_before_decoding(monkeypatch) -> None:
    # The header claims 10,000 x 10,000 (100 MP) but the data hold one row: a decoder would
    # allocate 100 MB first. The refusal must come from the header: the decoder is never called.
    decoded: list[int] = []
    imdecode = cv2.imdecode

    def counted(buffer, flags):
        decoded.append(len(buffer))
        return imdecode(buffer, flags)

    monkeypatch.setattr(cv2, "imdecode", counted)
    side = 10_000
    bomb = handmade_png(side, side, b"\x00" + bytes(side))
    message = refusal(bomb, "100 MP")
    assert "refused before decoding" in message
    # The same for a JPEG whose frame header claims 8,000 x 8,000.
    jpeg = bytearray(jpeg_bytes(ramp(64, 64)))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 8000, 8000)
    refusal(bytes(jpeg), "64 MP")
    assert 7000 * 7000 < MAX_PIXELS < 8000 * 8000
    assert decoded == []
    load_radiograph(png_bytes(ramp(64, 64)))  # a film of a sane size goes to the decoder
    assert len(decoded) == 1


def test_messages_name_the_upload() -> None:
    message = refusal(b"hello", "not an image", name="scan-42.png")
    assert message.startswith("scan-42.png: ")


# --- folders ---------------------------------------------------------------------------------


def test_iter_radiograph_files_recurses_skips_and_dedupes(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("a/one.png", "a/b/two.JPEG", "three.dcm", ".hidden/x.png", "a/.y.png"):
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientID = "x"
    ds.save_as(tmp_path / "a" / "1.2.840.99", enforce_file_format=True)  # PACS-style name
    ds.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)

    found = list(iter_radiograph_files([tmp_path, tmp_path / "three.dcm", tmp_path / "gone.png"]))
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    assert names == ["a/1.2.840.99", "a/b/two.JPEG", "a/one.png", "three.dcm", "gone.png"]
    assert {".png", ".jpg", ".jpeg", ".dcm"} <= set(SUPPORTED_SUFFIXES)
