"""DICOM radiographs: the display chain with hand-computed numbers, compressed twins, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels.decoders import JPEGLSLosslessDecoder, JPEGLSNearLosslessDecoder
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from cxr_attention.core.data.dicom import window
from cxr_attention.core.data.radiograph import iter_radiograph_files, load_radiograph
from cxr_attention.core.errors import RadiographError

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def make_dataset(
    stored: np.ndarray,
    *,
    bits_stored: int = 12,
    photometric: str = "MONOCHROME2",
    modality: str | None = "DX",
    **attributes,
) -> Dataset:
    """An uncompressed single-frame DX dataset holding `stored` (uint8 or uint16)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    if modality is not None:
        ds.Modality = modality
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19600101"
    ds.AccessionNumber = "ACC-9"
    ds.InstitutionName = "General Hospital"
    ds.ViewPosition = "PA"
    ds.PixelSpacing = [0.2, 0.2]
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def chest(size: int = 64, air: int = 300, body: int = 3000) -> np.ndarray:
    """12-bit MONOCHROME2-style stored values: dark air around a bright elliptical body."""
    yy, xx = np.mgrid[:size, :size]
    inside = ((yy - size / 2) / (size * 0.4)) ** 2 + ((xx - size / 2) / (size * 0.3)) ** 2 < 1
    rng = np.random.default_rng(0)
    values = np.where(inside, body, air) + rng.integers(0, 200, (size, size))
    return values.astype(np.uint16), inside


def refusal(source, match: str, **kwargs) -> str:
    with pytest.raises(RadiographError, match=match) as info:
        load_radiograph(source, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# --- the display chain -----------------------------------------------------------------------


def test_monochrome1_comes_out_with_air_dark(tmp_path: Path) -> None:
    mono2, inside = chest()
    mono1 = (4095 - mono2).astype(np.uint16)  # MONOCHROME1: low stored values display white
    path = save(make_dataset(mono1, photometric="MONOCHROME1"), tmp_path / "mono1.dcm")
    radiograph = load_radiograph(path)
    pixels = radiograph.pixels
    assert radiograph.meta.photometric == "MONOCHROME1"
    assert "inverted" in radiograph.meta.intensity
    assert pixels[~inside].mean() < 0.15 and pixels[inside].mean() > 0.85  # air dark, body bright
    twin = load_radiograph(save(make_dataset(mono2), tmp_path / "mono2.dcm"))
    np.testing.assert_allclose(pixels, twin.pixels, atol=1e-6)


def test_rescale_then_window_with_hand_computed_values(tmp_path: Path) -> None:
    stored = np.full((32, 32), 1000, np.uint16)
    stored[0, :4] = [0, 1000, 1512, 4095]
    ds = make_dataset(
        stored, RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=976, WindowWidth=2001
    )
    radiograph = load_radiograph(save(ds, tmp_path / "w.dcm"))
    # Modality values: 2 * stored - 1024 = [-1024, 976, 2000, 7166].
    # LINEAR window C=976 W=2001: y = (x - 975.5) / 2000 + 0.5, clipped to [0, 1].
    expected = [0.0, 0.50025, 1.0, 1.0]
    np.testing.assert_allclose(radiograph.pixels[0, :4], expected, atol=1e-6)
    assert radiograph.meta.intensity.startswith("window C=976 W=2001")
    # x = 1500 lands at (1500 - 975.5) / 2000 + 0.5 = 0.76225.
    assert window(np.array([1500.0]), 976, 2001)[0] == pytest.approx(0.76225)


def test_window_functions_follow_the_standard() -> None:
    x = np.array([-100.0, 0.0, 50.0, 100.0, 300.0])
    np.testing.assert_allclose(
        window(x, 50, 100, "LINEAR_EXACT"), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-12
    )
    # LINEAR: edges at c - 0.5 -/+ (w - 1) / 2 = 0 and 99, so y = x / 99 between them.
    np.testing.assert_allclose(
        window(x, 50, 100, "LINEAR"), [0.0, 0.0, 50 / 99, 1.0, 1.0], atol=1e-12
    )
    np.testing.assert_allclose(window(np.array([50.0]), 50, 100, "SIGMOID"), [0.5])
    assert window(np.array([150.0]), 50, 100, "SIGMOID")[0] == pytest.approx(1 / (1 + np.exp(-4)))


def test_voi_lut_sequence_is_applied(tmp_path: Path) -> None:
    stored = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (32, 1))  # 64 columns
    lut = (np.sqrt(np.arange(4096) / 4095.0) * 1000).round().astype(np.uint16)  # output 0..1000
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = lut.tolist()
    ds = make_dataset(stored, VOILUTSequence=[item], WindowCenter=10, WindowWidth=20)
    ds.VOILUTSequence[0]["LUTData"].VR = "US"
    radiograph = load_radiograph(save(ds, tmp_path / "lut.dcm"))
    assert radiograph.meta.intensity == "VOI LUT"  # the LUT wins over the window
    np.testing.assert_allclose(radiograph.pixels[0], lut[stored[0]] / 1000.0, atol=1e-6)


def test_percentile_window_ignores_hot_and_dead_pixels(tmp_path: Path) -> None:
    stored = np.tile(np.linspace(1000, 3000, 64).astype(np.uint16), (64, 1))
    stored[0, 0], stored[0, 1] = 0, 65535  # a dead and a hot detector element
    radiograph = load_radiograph(save(make_dataset(stored, bits_stored=16), tmp_path / "p.dcm"))
    assert radiograph.meta.intensity == "percentile window 0.5-99.5%"
    row = radiograph.pixels[10]
    # Min-max scaling would squeeze the body into [0.015, 0.046]; the robust window spreads it.
    assert row[0] == pytest.approx(0.0, abs=1e-6) and row[-1] == pytest.approx(1.0, abs=1e-6)
    assert row[32] == pytest.approx((stored[10, 32] - 1000) / 2000, abs=0.01)


def test_8bit_dicom_without_window_is_value_over_255(tmp_path: Path) -> None:
    stored = np.tile(np.arange(64, dtype=np.uint8) * 4, (40, 1))
    radiograph = load_radiograph(save(make_dataset(stored, bits_stored=8), tmp_path / "8.dcm"))
    np.testing.assert_array_equal(radiograph.pixels, (stored / 255.0).astype(np.float32))


def test_bits_above_bits_stored_are_ignored(tmp_path: Path) -> None:
    clean, _ = chest()
    dirty = clean | np.uint16(0xF000)  # overlay bits above the 12 stored ones
    a = load_radiograph(
        save(make_dataset(clean, WindowCenter=2000, WindowWidth=4000), tmp_path / "a.dcm")
    )
    b = load_radiograph(
        save(make_dataset(dirty, WindowCenter=2000, WindowWidth=4000), tmp_path / "b.dcm")
    )
    np.testing.assert_array_equal(a.pixels, b.pixels)


def test_metadata_and_identifiers_kept_apart(tmp_path: Path) -> None:
    stored, _ = chest()
    radiograph = load_radiograph(save(make_dataset(stored), tmp_path / "m.dcm"))
    meta = radiograph.meta
    assert (meta.format, meta.modality, meta.view_position) == ("dicom", "DX", "PA")
    assert meta.pixel_spacing == (0.2, 0.2) and meta.bits_stored == 12
    assert meta.transfer_syntax == "Explicit VR Little Endian"
    assert meta.patient["PatientName"] == "Doe^Jane" and meta.patient["PatientID"] == "MRN-0042"
    assert meta.patient["AccessionNumber"] == "ACC-9"
    shown = meta.display_dict()
    assert "patient" not in shown and "Doe^Jane" not in repr(shown)


def test_extensionless_dicom_is_found_and_read(tmp_path: Path) -> None:
    stored, _ = chest()
    save(make_dataset(stored), tmp_path / "IM000001")
    (found,) = list(iter_radiograph_files([tmp_path]))
    assert found.name == "IM000001"
    assert load_radiograph(found).pixels.shape == (64, 64)


# --- compressed twins ------------------------------------------------------------------------


def jpeg_lossless_sv1(image: np.ndarray, precision: int) -> bytes:
    """A minimal JPEG lossless (process 14, selection value 1) encoder, ITU T.81 annex H.

    No encoder for this syntax ships with pydicom or the pylibjpeg plugins, so the test writes
    the codestream itself: one Huffman table where every difference category has a 5-bit code.
    """
    rows, cols = image.shape
    x = image.astype(np.int64)
    bits: list[int] = []
    for r in range(rows):
        for c in range(cols):
            if r == 0 and c == 0:
                prediction = 1 << (precision - 1)
            elif r == 0:
                prediction = x[r, c - 1]
            elif c == 0:
                prediction = x[r - 1, c]
            else:
                prediction = x[r, c - 1]
            diff = int(x[r, c] - prediction)
            category = abs(diff).bit_length()
            bits += [(category >> i) & 1 for i in range(4, -1, -1)]
            if 0 < category < 16:
                extra = diff if diff > 0 else diff - 1
                bits += [(extra >> i) & 1 for i in range(category - 1, -1, -1)]
    bits += [1] * (-len(bits) % 8)
    scan = bytearray()
    for i in range(0, len(bits), 8):
        byte = int("".join(map(str, bits[i : i + 8])), 2)
        scan.append(byte)
        if byte == 0xFF:
            scan.append(0x00)  # byte stuffing
    counts = [0] * 16
    counts[4] = 17  # 17 categories, all with 5-bit codes
    dht = bytes([0x00]) + bytes(counts) + bytes(range(17))
    sof = (
        bytes([precision]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + b"\x01\x01\x11\x00"
    )
    sos = b"\x01\x01\x00\x01\x00\x00"  # one component, table 0, predictor 1, Se 0, Pt 0

    def segment(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    return (
        b"\xff\xd8"
        + segment(0xC3, sof)
        + segment(0xC4, dht)
        + segment(0xDA, sos)
        + bytes(scan)
        + b"\xff\xd9"
    )


@pytest.fixture
def twelve_bit() -> np.ndarray:
    stored, _ = chest(48)
    stored[5, 5], stored[6, 6] = 4095, 0  # extremes, so every difference category is exercised
    return stored


def uncompressed_pixels(stored: np.ndarray, tmp_path: Path) -> np.ndarray:
    return load_radiograph(save(make_dataset(stored), tmp_path / "plain.dcm")).pixels


def test_rle_twin_gives_identical_pixels(tmp_path: Path, twelve_bit: np.ndarray) -> None:
    ds = make_dataset(twelve_bit)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    radiograph = load_radiograph(save(ds, tmp_path / "rle.dcm"))
    assert radiograph.meta.transfer_syntax == "RLE Lossless"
    np.testing.assert_array_equal(radiograph.pixels, uncompressed_pixels(twelve_bit, tmp_path))


def test_jpeg2000_lossless_twin_gives_identical_pixels(
    tmp_path: Path, twelve_bit: np.ndarray
) -> None:
    ds = make_dataset(twelve_bit)
    ds.compress(JPEG2000Lossless)  # pylibjpeg-openjpeg encodes
    radiograph = load_radiograph(save(ds, tmp_path / "j2k.dcm"))
    assert "JPEG 2000" in radiograph.meta.transfer_syntax
    np.testing.assert_array_equal(radiograph.pixels, uncompressed_pixels(twelve_bit, tmp_path))


def test_jpeg_lossless_twin_gives_identical_pixels(tmp_path: Path, twelve_bit: np.ndarray) -> None:
    ds = make_dataset(twelve_bit)
    ds.PixelData = encapsulate([jpeg_lossless_sv1(twelve_bit, precision=12)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    radiograph = load_radiograph(save(ds, tmp_path / "jll.dcm"))
    assert radiograph.meta.transfer_syntax.startswith("JPEG Lossless")
    np.testing.assert_array_equal(radiograph.pixels, uncompressed_pixels(twelve_bit, tmp_path))


@pytest.fixture
def runtime_jpeg_ls_decoders(monkeypatch):
    """JPEG-LS decoded as a user's install decodes it: pyjpegls (the test extra's encoder, which
    pydicom would otherwise try first) is taken out of the decoders, leaving pylibjpeg-libjpeg,
    a runtime dependency."""
    for decoder in (JPEGLSLosslessDecoder, JPEGLSNearLosslessDecoder):
        monkeypatch.delitem(decoder._available, "pyjpegls", raising=False)
        assert decoder.available_plugins == ("pylibjpeg",)


def test_jpeg_ls_twin_gives_identical_pixels(
    tmp_path: Path, twelve_bit: np.ndarray, runtime_jpeg_ls_decoders
) -> None:
    ds = make_dataset(twelve_bit)
    ds.compress(JPEGLSLossless)  # pyjpegls encodes (the test extra)
    radiograph = load_radiograph(save(ds, tmp_path / "jls.dcm"))
    assert radiograph.meta.transfer_syntax == "JPEG-LS Lossless Image Compression"
    np.testing.assert_array_equal(radiograph.pixels, uncompressed_pixels(twelve_bit, tmp_path))


def test_near_lossless_jpeg_ls_stays_within_its_stated_error(
    tmp_path: Path, twelve_bit: np.ndarray, runtime_jpeg_ls_decoders
) -> None:
    """JPEG-LS near-lossless (NEAR = 3): every stored value within 3 of the original, so every
    display value within 3 / 4095 of the lossless film's (the window is the file's own)."""
    ds = make_dataset(twelve_bit, WindowCenter=2048, WindowWidth=4096)
    ds.compress(JPEGLSNearLossless, jls_error=3)
    radiograph = load_radiograph(save(ds, tmp_path / "jls-near.dcm"))
    assert radiograph.meta.transfer_syntax.startswith("JPEG-LS Lossy (Near-Lossless)")
    plain = load_radiograph(
        save(make_dataset(twelve_bit, WindowCenter=2048, WindowWidth=4096), tmp_path / "p.dcm")
    )
    difference = np.abs(radiograph.pixels.astype(np.float64) - plain.pixels)
    assert 0 < difference.max() <= 3 / 4095 + 1e-6  # lossy, within NEAR


# --- refusals --------------------------------------------------------------------------------


def test_refuses_multi_frame(tmp_path: Path) -> None:
    frames = np.zeros((2, 40, 40), np.uint16)
    ds = make_dataset(frames[0])
    ds.NumberOfFrames = 2
    ds.PixelData = frames.tobytes()
    refusal(save(ds, tmp_path / "cine.dcm"), "multi-frame DICOM \\(2 frames\\)")


def test_refuses_cross_sectional_modalities_unless_forced(tmp_path: Path) -> None:
    stored, _ = chest()
    path = save(make_dataset(stored, modality="CT"), tmp_path / "ct.dcm")
    message = refusal(path, "modality CT \\(computed tomography\\) is not a projection radiograph")
    assert "--any-modality" in message
    refusal(save(make_dataset(stored, modality="US"), tmp_path / "us.dcm"), "ultrasound")
    assert load_radiograph(path, allow_any_modality=True).meta.modality == "CT"
    for allowed in ("CR", "RG", "OT", None):
        assert load_radiograph(save(make_dataset(stored, modality=allowed), tmp_path / "ok.dcm"))


def test_refuses_tiny_and_huge_before_decoding(tmp_path: Path) -> None:
    refusal(save(make_dataset(np.zeros((16, 64), np.uint16)), tmp_path / "t.dcm"), "64 x 16")
    # The header claims 9,000 x 9,000 but the pixel data hold 64 x 64: only a header check
    # (not a decoding attempt, which would report truncated data) gives this message.
    ds = make_dataset(np.zeros((64, 64), np.uint16))
    ds.Rows = ds.Columns = 9000
    message = refusal(save(ds, tmp_path / "bomb.dcm"), "81 MP")
    assert "refused before decoding" in message


def test_refuses_no_pixels_truncated_and_corrupt(tmp_path: Path) -> None:
    stored, _ = chest()
    ds = make_dataset(stored)
    del ds.PixelData
    refusal(save(ds, tmp_path / "report.dcm"), "without pixel data")
    whole = save(make_dataset(stored), tmp_path / "whole.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: len(whole) - 3000])
    refusal(cut, "corrupt or truncated DICOM")
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(bytes(128) + b"DICM" + bytes(range(256)) * 3)
    refusal(garbage, "DICOM")


def test_damaged_compressed_files_give_one_clear_message(
    tmp_path: Path, twelve_bit: np.ndarray, recwarn
) -> None:
    ds = make_dataset(twelve_bit)
    ds.compress(JPEG2000Lossless)
    whole = save(ds, tmp_path / "j2k.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: len(whole) - 200])  # ends inside the encapsulated frame
    refusal(cut, "truncated DICOM \\(the file ends inside its pixel data\\)")
    (frame,) = list(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 2]])  # well-formed, but half a codestream
    refusal(save(ds, tmp_path / "half.dcm"), "corrupt JPEG 2000 .* pixel data")
    # libjpeg would fill a cut JPEG-lossless frame with grey; the missing end marker gives it away.
    ds = make_dataset(twelve_bit)
    stream = jpeg_lossless_sv1(twelve_bit, precision=12)
    ds.PixelData = encapsulate([stream[: len(stream) // 2]])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    refusal(save(ds, tmp_path / "jll.dcm"), "truncated JPEG Lossless.* frame \\(no end marker\\)")
    # pydicom's complaints are folded into the message, not printed beside it.
    assert not [w for w in recwarn if "pydicom" in str(w.filename)]


# --- real files ------------------------------------------------------------------------------


@pytest.mark.skipif(not REALDATA.exists(), reason="../shared/realdata not present")
def test_real_siim_dicom() -> None:
    import pydicom

    path = REALDATA / "images" / "siim_pneumothorax_850819.dcm"
    radiograph = load_radiograph(path)
    meta = radiograph.meta
    assert radiograph.pixels.shape == (1024, 1024)
    assert (meta.modality, meta.view_position, meta.photometric) == ("CR", "PA", "MONOCHROME2")
    assert meta.pixel_spacing == (0.168, 0.168) and meta.transfer_syntax.startswith("JPEG Baseline")
    assert meta.patient["PatientID"] and meta.patient["PatientSex"] == "M"
    decoded = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(radiograph.pixels, (decoded / 255.0).astype(np.float32))
    p = radiograph.pixels  # lungs darker than the spine between them
    assert p[400:600, 250:350].mean() < p[400:600, 480:540].mean()
