"""`cxr-attention predict`: output schemas, bad files among good ones, PNG = DICOM, map files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.explain.base import upsample
from cxr_attention.core.inference import load_scoring_models, predict_files
from cxr_attention.core.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.train.cli import main
from tests.test_dicom import make_dataset, save
from tests.test_models import randomise_head

LABELS = ("Atelectasis", "Effusion", "Mass", "Nodule")
NOTE = "cxr-attention predict: note: "
# Effusion is always positive (threshold 0), Mass never (threshold above 1).
THRESHOLDS = {
    "Atelectasis": {"youden": 0.5, "f1": 0.4},
    "Effusion": {"youden": 0.0, "f1": 0.0},
    "Mass": {"youden": 1.01, "f1": 1.01},
    "Nodule": {"youden": 0.5, "f1": 0.4},
}


def build_checkpoint(path: Path, attention: bool, image_size: int, seed: int) -> Path:
    torch.manual_seed(seed)
    model = AttentionClassifier(
        ModelConfig("mobilenetv2_100", LABELS, attention=attention, image_size=image_size)
    )
    return save_checkpoint(path, model, {"thresholds": THRESHOLDS, "epochs": 0})


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("runA") / "checkpoint.pt", True, 64, 0)


@pytest.fixture(scope="module")
def class_ckpt(tmp_path_factory) -> Path:
    """A class-specific head (one map per label) at output stride 16: 4 x 4 maps at 64 px."""
    torch.manual_seed(2)
    config = ModelConfig(
        "mobilenetv2_100",
        LABELS,
        attention=True,
        attention_kind="class",
        output_stride=16,
        image_size=64,
    )
    model = AttentionClassifier(config)
    randomise_head(model)
    path = tmp_path_factory.mktemp("runC") / "checkpoint.pt"
    return save_checkpoint(path, model, {"thresholds": THRESHOLDS, "epochs": 0})


@pytest.fixture(scope="module")
def baseline_ckpt(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("ckpts") / "base.pt", False, 48, 1)


def film(seed: int, size: int = 72) -> np.ndarray:
    """A smooth random uint8 image (a different one per seed), not square on purpose."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (9, 8)).astype(np.float32)
    return np.clip(cv2.resize(small, (size - 8, size)), 0, 255).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def predict_json(capsys, *args: str) -> tuple[int, list[dict], str]:
    status = main(["predict", *args, "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def direct_probabilities(checkpoint: Checkpoint, image_path: Path) -> np.ndarray:
    """The same scores computed by hand: load, model view, normalise, forward, sigmoid."""
    view = model_view(load_radiograph(image_path).pixels, checkpoint.config.image_size)
    with torch.no_grad():
        logits = checkpoint.model(config_input(view[None], checkpoint.config))
    return torch.sigmoid(logits)[0].numpy()


def without_notes(err: str) -> list[str]:
    """stderr lines other than notes (such as a checkpoint saved before calibration existed)."""
    return [line for line in err.strip().splitlines() if not line.startswith(NOTE)]


def test_json_schema_and_values(capsys, ckpt: Path, tmp_path: Path) -> None:
    a, b = write_png(tmp_path / "a.png", film(1)), write_png(tmp_path / "b.png", film(2))
    status, records, err = predict_json(capsys, str(ckpt), str(a), str(b))
    # These checkpoints carry neither temperatures nor an OOD description: one note says so.
    assert status == 0 and err == (
        f"{NOTE}{ckpt.parent.name} has no calibration (probabilities are raw sigmoid outputs) and "
        "no description of its training films (unusual images are not flagged)\n"
    )
    assert [r["image"] for r in records] == [str(a), str(b)]
    checkpoint = load_checkpoint(ckpt)
    for record, path in zip(records, (a, b), strict=True):
        assert set(record) == {
            "image",
            "probabilities",
            "attention_kind",
            "calibrated",
            "positive",
            "out_of_distribution",
        }
        assert record["calibrated"] is False and record["out_of_distribution"] is None
        assert record["attention_kind"] == "spatial"
        assert list(record["probabilities"]) == list(LABELS)  # the checkpoint's order
        expected = direct_probabilities(checkpoint, path)
        np.testing.assert_allclose(list(record["probabilities"].values()), expected, atol=2e-6)
        assert "Effusion" in record["positive"] and "Mass" not in record["positive"]
        p = record["probabilities"]
        assert record["positive"] == sorted(
            (label for label in LABELS if p[label] >= THRESHOLDS[label]["youden"]),
            key=lambda label: -p[label],
        )
    assert records[0]["probabilities"] != records[1]["probabilities"]


def test_csv_has_one_row_per_image(capsys, ckpt: Path, tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / "in" / f"{i}.png", film(i))
    out = tmp_path / "scores.csv"
    assert main(["predict", str(ckpt), str(tmp_path / "in"), "--csv", str(out), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["image", *LABELS, "positive", "ood_score", "out_of_distribution"]
    assert len(rows) == 4
    for row, record in zip(rows[1:], records, strict=True):
        assert row[0] == record["image"]
        assert [float(v) for v in row[1:5]] == pytest.approx(
            list(record["probabilities"].values()), abs=1e-6
        )
        assert row[5].split(";") == record["positive"]
        assert row[6:] == ["", ""]  # no OOD description in this checkpoint


def test_table_marks_positives(capsys, ckpt: Path, tmp_path: Path) -> None:
    a = write_png(tmp_path / "a.png", film(1))
    assert main(["predict", str(ckpt), str(a), "--labels", "Effusion,Mass"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["image", "labels"]
    cells = lines[1].split(maxsplit=1)[1].split(", ")
    assert cells[0].startswith("Effusion 0.") and cells[0].endswith("*")
    assert cells[1].startswith("Mass 0.") and not cells[1].endswith("*")


def test_folder_with_one_corrupt_file(capsys, ckpt: Path, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    for i in range(3):
        write_png(folder / f"good{i}.png", film(i))
    data = (folder / "good0.png").read_bytes()
    (folder / "sub").mkdir()
    (folder / "sub" / "bad.png").write_bytes(data[: len(data) // 2])
    (folder / "readme.txt").write_text("not an image, not a candidate")
    # in-process (a subprocess costs seconds of imports; tests/test_cli.py runs the console
    # itself): an exception would fail the test, as a traceback would fail the user
    assert main(["predict", str(ckpt), str(folder), "--json"]) == 1
    out, err = capsys.readouterr()
    err = without_notes(err)
    assert len(err) == 2
    assert (
        err[0] == f"cxr-attention predict: skipped {folder / 'sub' / 'bad.png'}: truncated PNG "
        "(no IEND chunk); the file is incomplete"
    )
    assert err[1].endswith("1 of 4 files could not be read (reasons above)")
    records = json.loads(out)
    assert [Path(r["image"]).name for r in records] == ["good0.png", "good1.png", "good2.png"]


def test_single_bad_file_exits_non_zero_with_one_line(capsys, ckpt: Path, tmp_path: Path) -> None:
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"")
    assert main(["predict", str(ckpt), str(bad)]) == 1
    err = without_notes(capsys.readouterr().err)
    assert err == [f"cxr-attention predict: skipped {bad}: the file is empty (0 bytes)"]


def test_png_and_equivalent_dicoms_score_identically(capsys, ckpt: Path, tmp_path: Path) -> None:
    image = film(7, size=80)
    png = write_png(tmp_path / "film.png", image)
    mono2 = save(make_dataset(image, bits_stored=8), tmp_path / "film2.dcm")
    # The same film stored MONOCHROME1 (inverted values): it must come out the same way up.
    mono1 = save(
        make_dataset((255 - image).astype(np.uint8), bits_stored=8, photometric="MONOCHROME1"),
        tmp_path / "film1.dcm",
    )
    status, records, _ = predict_json(capsys, str(ckpt), str(png), str(mono2), str(mono1))
    assert status == 0
    assert records[0]["probabilities"] == records[1]["probabilities"]
    assert records[0]["probabilities"] == records[2]["probabilities"]


def test_save_maps_writes_expected_files(capsys, ckpt: Path, tmp_path: Path) -> None:
    a = write_png(tmp_path / "x" / "film.png", film(1))
    b = write_png(tmp_path / "y" / "film.png", film(2))  # same stem, other folder
    maps = tmp_path / "maps"
    argv = ["predict", str(ckpt), str(a), str(b), "--save-maps", str(maps)]
    assert main(argv) == 0
    # Default: the model's own method (attention); a gate's map is one for all labels, so one
    # file per gate, named after the gate.
    assert {p.name for p in maps.iterdir()} == {
        f"{stem}_{suffix}.png"
        for stem in ("film", "film-2")
        for suffix in ("input", "attention_stage4")
    }
    for f in maps.iterdir():
        f.unlink()
    assert main([*argv, "--labels", "Effusion,Nodule", "--method", "attention,gradcam"]) == 0
    capsys.readouterr()
    expected = {
        f"{stem}_{suffix}.png"
        for stem in ("film", "film-2")
        for suffix in ("input", "attention_stage4", "gradcam_Effusion", "gradcam_Nodule")
    }
    assert {p.name for p in maps.iterdir()} == expected
    # The input file is exactly the model's view (uint8, before normalisation).
    written = cv2.imread(str(maps / "film-2_input.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, model_view(load_radiograph(b).pixels, 64))
    overlay = cv2.imread(str(maps / "film_gradcam_Effusion.png"), cv2.IMREAD_UNCHANGED)
    assert overlay.shape == (64, 64, 3)


def class_overlay(checkpoint: Checkpoint, image_path: Path, label: str) -> np.ndarray:
    """The overlay of one label's class-specific map computed by hand (RGB uint8): the model
    view, the head's map of that label, bilinear to the view's size, on the fixed 0-1 scale."""
    from cxr_attention.core.explain.overlay import overlay

    size = checkpoint.config.image_size
    view = model_view(load_radiograph(image_path).pixels, size)
    with torch.no_grad():
        out = checkpoint.model.forward_with_maps(config_input(view[None], checkpoint.config))
    own = out.maps["class"][:, [checkpoint.labels.index(label)]]  # (1, 1, 4, 4)
    heat = upsample(own, (size, size))[0, 0]
    return overlay(view, heat.numpy(), opacity=0.4, vmin=0.0, vmax=1.0)


def test_save_maps_of_a_class_model_writes_one_map_per_label(
    capsys, class_ckpt: Path, ckpt: Path, tmp_path: Path
) -> None:
    a = write_png(tmp_path / "a.png", film(4))
    maps = tmp_path / "maps"
    status, (record,), _ = predict_json(capsys, str(class_ckpt), str(a), "--save-maps", str(maps))
    assert status == 0 and record["attention_kind"] == "class"
    # Default: the image's positive findings, each under its own name (Effusion always, Mass never).
    assert "Effusion" in record["positive"] and "Mass" not in record["positive"]
    assert {p.name for p in maps.iterdir()} == {"a_input.png"} | {
        f"a_attention_{label}.png" for label in record["positive"]
    }
    assert (
        main(["predict", str(class_ckpt), str(a), "--save-maps", str(maps), "--labels", "all"]) == 0
    )
    capsys.readouterr()
    written = {label: cv2.imread(str(maps / f"a_attention_{label}.png")) for label in LABELS}
    checkpoint = load_checkpoint(class_ckpt)
    for label, bgr in written.items():
        # Each file is that label's own map, as the head computes it.
        expected = class_overlay(checkpoint, a, label)
        np.testing.assert_allclose(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), expected, atol=1)
    assert not np.array_equal(written["Effusion"], written["Nodule"])
    # Beside a gate model: each model's files carry its name, per label and per gate.
    for f in maps.iterdir():
        f.unlink()
    argv = [str(class_ckpt), "--ckpt", str(ckpt), str(a), "--labels", "Nodule"]
    status, (record,), _ = predict_json(capsys, *argv, "--save-maps", str(maps))
    assert status == 0
    kinds = {tag: block["attention_kind"] for tag, block in record["models"].items()}
    assert kinds == {class_ckpt.parent.name: "class", ckpt.parent.name: "spatial"}
    assert {p.name for p in maps.iterdir()} == {
        "a_input.png",
        f"a_{class_ckpt.parent.name}_attention_Nodule.png",
        f"a_{ckpt.parent.name}_attention_stage4.png",
    }


def test_several_checkpoints(capsys, ckpt: Path, baseline_ckpt: Path, tmp_path: Path) -> None:
    a = write_png(tmp_path / "a.png", film(3))
    maps = tmp_path / "maps"
    status, records, err = predict_json(
        capsys,
        str(ckpt),
        "--ckpt",
        str(baseline_ckpt),
        str(a),
        "--save-maps",
        str(maps),
        "--method",
        "gradcam",
        "--labels",
        "Effusion",
    )
    assert status == 0
    (record,) = records
    tag = ckpt.parent.name  # RUN/checkpoint.pt is named after its run folder
    assert set(record["models"]) == {tag, "base"}
    assert record["probabilities"] == record["models"][tag]["probabilities"]
    assert record["models"]["base"]["probabilities"] != record["probabilities"]
    assert record["models"]["base"]["checkpoint"] == str(baseline_ckpt)
    assert record["models"]["base"]["attention_kind"] is None  # a baseline
    assert {p.name for p in maps.iterdir()} == {
        "a_input_48px.png",
        "a_input_64px.png",
        f"a_{tag}_gradcam_Effusion.png",
        "a_base_gradcam_Effusion.png",
    }


def test_bad_checkpoint_is_one_line_exit_2(capsys, tmp_path: Path) -> None:
    broken = tmp_path / "checkpoint.pt"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    image = write_png(tmp_path / "a.png", film(1))
    assert main(["predict", str(broken), str(image)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("cxr-attention predict: error: ")
    assert "not a readable checkpoint" in captured.err


def test_option_errors(capsys, ckpt: Path, baseline_ckpt: Path, tmp_path: Path) -> None:
    image = write_png(tmp_path / "a.png", film(1))
    cases = [
        (["--method", "gradcam"], "--method only applies with --save-maps"),
        (["--save-maps", str(tmp_path / "m"), "--labels", "Hernia"], "label 'Hernia' is not"),
        (["--threshold", "2"], "use youden, f1 or a probability"),
    ]
    for extra, message in cases:
        assert main(["predict", str(ckpt), str(image), *extra]) == 2
        assert message in capsys.readouterr().err
    argv = ["predict", str(baseline_ckpt), str(image), "--save-maps", str(tmp_path / "m")]
    assert main([*argv, "--method", "attention"]) == 2
    assert "baseline without attention: use --method gradcam" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(ckpt), str(empty)]) == 2
    assert "no PNG, JPEG or DICOM files found" in capsys.readouterr().err


def test_predict_files_keeps_order_and_batches(ckpt: Path, tmp_path: Path) -> None:
    paths = [write_png(tmp_path / f"{i:02d}.png", film(i)) for i in range(7)]
    paths.insert(4, tmp_path / "missing.png")
    models = load_scoring_models([ckpt])
    results = list(predict_files(models, paths, batch_size=3, workers=3))
    kinds = [type(r).__name__ for r in results]
    # The failure passes straight through, ahead of the batch that was filling when it came.
    assert kinds == ["ScoredBatch", "ImageFailure", "ScoredBatch", "ScoredBatch"]
    assert "file not found" in results[1].reason
    batches = [results[0], *results[2:]]
    sources = [image.source for batch in batches for image in batch.images]
    assert sources == [str(p) for p in paths if p.exists()]
    assert [len(batch.images) for batch in batches] == [3, 3, 1]
    # Decoding inline (no threads) gives the same scores.
    inline = list(predict_files(models, paths, batch_size=3, workers=0))
    for threaded, plain in zip(batches, [inline[0], *inline[2:]], strict=True):
        np.testing.assert_array_equal(
            threaded.probabilities[models[0].tag], plain.probabilities[models[0].tag]
        )
