"""`cxr-attention localize` on a hand-made ChestX-ray14 folder (and the real sample when present)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cxr_attention.core.explain.base import upsample
from cxr_attention.core.explain.localize_run import truth_cases
from cxr_attention.core.explain.table import localization_table, table_labels
from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.checkpoint import load_checkpoint, save_checkpoint
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.train.cli import main
from tests.test_models import randomise_head

REALDATA = Path(__file__).parents[2] / "shared" / "realdata"
SCHEMA = {
    "run",
    "method",
    "split",
    "n_boxes",
    "n_images",
    "source",
    "per_class",
    "overall",
    "map_stage",
    "maps",
}
ENTRY = {"n_boxes", "pointing_game", "iobb_acc", "energy_in_box"}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on a few shared cores torch's thread pool spins against other
    processes and small models run 10-20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# image id -> (patient, findings, split, boxes in the 1024 x 1024 frame of the box file)
IMAGES = {
    "00000001_000.png": (1, "Infiltration|Nodule", "test", [("Infiltrate", 0, 0, 1024, 1024), ("Nodule", 600, 200, 100, 100)]),
    "00000002_000.png": (2, "Effusion", "test", [("Effusion", 100, 500, 300, 400)]),
    "00000003_000.png": (3, "No Finding", "test", []),
    "00000004_000.png": (4, "Mass", "train", [("Mass", 100, 100, 200, 200)]),
    "00000005_000.png": (5, "No Finding", "train", []),
    "00000006_000.png": (6, "Effusion", "train", []),
    "00000007_000.png": (7, "No Finding", "train", []),
}  # fmt: skip


def write_dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    entries = [
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position"
    ]
    boxes = ["Image Index,Finding Label,Bbox [x,y,w,h],,,"]
    for name, (patient, findings, _, image_boxes) in IMAGES.items():
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 256, (96, 96), dtype=np.uint8))
        entries.append(f"{name},{findings},0,{patient},50,M,PA")
        boxes += [f"{name},{label},{x},{y},{w},{h}" for label, x, y, w, h in image_boxes]
    (root / "Data_Entry_2017.csv").write_text("\n".join(entries) + "\n")
    (root / "BBox_List_2017.csv").write_text("\n".join(boxes) + "\n")
    for split, file in (("train", "train_val_list.txt"), ("test", "test_list.txt")):
        (root / file).write_text("\n".join(n for n, v in IMAGES.items() if v[2] == split))
    return root


def write_run(run: Path, data: Path, attention: bool = True, kind: str = "spatial") -> Path:
    """An untrained test_resnet run on `data` (a class head: output stride 16, weights drawn
    large enough that its labels' maps differ)."""
    torch.manual_seed(0)
    config = ModelConfig(
        "test_resnet",
        ALL14,
        attention=attention,
        attention_kind=kind,
        output_stride=16 if kind == "class" else 32,
        image_size=64,
        in_chans=1,
        mean=(0.5,),
        std=(0.25,),
    )
    model = AttentionClassifier(config).eval()
    randomise_head(model)
    training = {"data": {"source": "chestxray14", "root": str(data), "label_set": "all14"}}
    save_checkpoint(run / "checkpoint.pt", model, training)
    return run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("cxr14"))


def test_truth_cases_read_infiltrate_as_infiltration(dataset):
    from cxr_attention.core.data.sources import open_dataset

    index = open_dataset(dataset)
    cases, kind = truth_cases(index, index.split("test"), ALL14)
    assert kind == "boxes"
    assert [c.image_id for c in cases] == ["00000001_000.png", "00000002_000.png"]
    assert sorted(cases[0].boxes) == ["Infiltration", "Nodule"]
    (box,) = cases[0].boxes["Nodule"]  # scaled from the 1024 frame to the 96 px image
    assert (box.x, box.y, box.w, box.h) == pytest.approx((56.25, 18.75, 9.375, 9.375))


def test_localize_writes_the_schema_and_the_random_control(dataset, tmp_path, capsys):
    run = write_run(tmp_path / "run", dataset)
    assert main(["localize", str(run), "--method", "gradcam"]) == 0
    assert "pointing game" in capsys.readouterr().out
    report = json.loads((run / "localization.json").read_text())
    assert set(report) == SCHEMA
    assert report["method"] == "gradcam" and report["map_stage"] == "stage4"
    assert report["maps"] == "gradcam (stage4)"
    assert (report["n_boxes"], report["n_images"], report["source"]) == (3, 2, "chestxray14")
    assert list(report["per_class"]) == ["Effusion", "Infiltration", "Nodule"]  # model order
    for entry in [report["overall"], *report["per_class"].values()]:
        assert set(entry) == ENTRY and set(entry["iobb_acc"]) == {"0.1", "0.25", "0.5"}
    # A box over the whole image holds every map's maximum, detected boxes and energy.
    whole = report["per_class"]["Infiltration"]
    assert whole["pointing_game"] == 1.0 and whole["energy_in_box"] == pytest.approx(1.0)
    assert whole["iobb_acc"] == {"0.1": 1.0, "0.25": 1.0, "0.5": 1.0}
    control = json.loads((run / "localization_random.json").read_text())
    assert set(control) == SCHEMA and control["method"] == "random"
    assert control["maps"] == "random control"
    assert control["n_boxes"] == 3

    rows = localization_table([run])
    kinds = {(r["kind"], r["metric"]) for r in rows}
    assert ("run", "pointing_game") in kinds and ("control", "iobb@0.5") in kinds
    published = [r for r in rows if r["kind"] == "published" and r["metric"] == "iobb@0.1"]
    assert published[0]["Cardiomegaly"] == 0.993
    assert table_labels(rows)[:3] == ["Atelectasis", "Cardiomegaly", "Effusion"]


def test_localize_attention_limit_and_stage(dataset, tmp_path):
    run = write_run(tmp_path / "run", dataset)
    assert (
        main(["localize", str(run), "--method", "attention", "--limit", "1", "--no-control"]) == 0
    )
    report = json.loads((run / "localization.json").read_text())
    assert (report["n_images"], report["n_boxes"], report["map_stage"]) == (1, 2, "stage4")
    assert report["maps"] == "attention gate stage4 (one map for all labels)"
    assert not (run / "localization_random.json").exists()


def own_map_energy(checkpoint, data: Path, image: str, box: tuple, label: str) -> float:
    """Energy of a class head's map of `label` in one box of the box file, by hand: the model
    view of the 96 px image, the head's map upsampled to it, its mass inside the box."""
    from cxr_attention.core.data.preprocess import config_input, model_view, square_geometry
    from cxr_attention.core.data.radiograph import load_radiograph
    from cxr_attention.core.explain.localization import Box, box_mask, box_to_view

    film = load_radiograph(data / "images" / image)
    size = checkpoint.config.image_size
    view = model_view(film.pixels, size)
    with torch.no_grad():
        out = checkpoint.model.forward_with_maps(config_input(view[None], checkpoint.config))
    own = out.maps["class"][:, [checkpoint.labels.index(label)]]
    heat = upsample(own, (size, size))[0, 0].numpy()
    scale = film.width / 1024  # the box file's frame
    in_image = Box(*(v * scale for v in box))
    mask = box_mask(
        [box_to_view(in_image, square_geometry(film.height, film.width, size))], heat.shape
    )
    return float(heat[mask].sum() / heat.sum())


def test_localize_scores_each_label_with_its_own_class_specific_map(dataset, tmp_path, capsys):
    run = write_run(tmp_path / "tiny+class", dataset, kind="class")
    assert main(["localize", str(run), "--method", "attention", "--no-control"]) == 0
    assert "class-specific attention (one map per label) on 3 boxes" in capsys.readouterr().out
    report = json.loads((run / "localization.json").read_text())
    assert report["map_stage"] == "class"
    assert report["maps"] == "class-specific attention (one map per label)"
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    nodule = ("00000001_000.png", (600, 200, 100, 100))
    effusion = ("00000002_000.png", (100, 500, 300, 400))
    # Each label's score is its own map's, computed by hand; the other label's map would give
    # another share of the same box (by 4e-5 and 9e-5 here, against the 2e-6 the own map is held
    # to: an untrained head's maps are flat).
    pairs = (("Nodule", nodule, "Effusion"), ("Effusion", effusion, "Nodule"))
    for label, (image, box), other in pairs:
        scored = report["per_class"][label]["energy_in_box"]
        assert scored == pytest.approx(
            own_map_energy(checkpoint, dataset, image, box, label), abs=2e-6
        )
        assert abs(own_map_energy(checkpoint, dataset, image, box, other) - scored) > 2e-5


def test_localize_errors_are_one_line(dataset, tmp_path, capsys):
    baseline = write_run(tmp_path / "baseline", dataset, attention=False)
    assert main(["localize", str(baseline), "--method", "attention"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "baseline" in err and "--method gradcam" in err
    assert main(["localize", str(tmp_path / "nowhere")]) == 2
    assert "run folder not found" in capsys.readouterr().err
    # No outlines in val: the maps are held to the lung fields instead, and films the lung model
    # does not know as chest films (these drawn ones) are refused in one line each, not scored.
    assert main(["localize", str(baseline), "--split", "val"]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert "holding the maps to the lung fields instead" in said[0]
    assert "is it a frontal chest film?" in said[-1]
    assert main(["localize", str(baseline), "--method", "random", "--stage", "stage3"]) == 2
    assert "--stage applies to attention and gradcam" in capsys.readouterr().err


def test_localize_random_alone_writes_its_report(dataset, tmp_path):
    # in-process (a subprocess costs seconds of imports; tests/test_cli.py runs the console itself)
    run = write_run(tmp_path / "run", dataset)
    assert main(["localize", str(run), "--method", "random"]) == 0
    report = json.loads((run / "localization.json").read_text())
    assert report["method"] == "random" and report["map_stage"] == "random"


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata not present")
@pytest.mark.filterwarnings("ignore::core.data.chestxray14.DatasetWarning")  # 23 of 112,120 present
def test_localize_on_real_chestxray14_boxes(tmp_path):
    run = write_run(tmp_path / "run", REALDATA)
    assert main(["localize", str(run), "--limit", "3", "--no-control"]) == 0
    report = json.loads((run / "localization.json").read_text())
    assert report["n_images"] == 3 and report["n_boxes"] >= 3
    assert report["source"] == "chestxray14" and report["split"] == "test"


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata not present")
@pytest.mark.filterwarnings("ignore::core.data.chestxray14.DatasetWarning")  # 23 of 112,120 present
def test_localize_class_specific_maps_on_real_chestxray14_boxes(tmp_path, capsys):
    """Issue 17, real films: a class-specific head's own maps through `localize`, on every
    ChestX-ray14 box of the sample, beside the random control, in the table `compare` prints."""
    import pandas as pd

    manifest = pd.read_csv(REALDATA / "manifest.csv").dropna(subset=["bbox_xywh_1024"])
    boxed = manifest[manifest["official_split"] == "test"]
    n_boxes = sum(len(cell.split(";")) for cell in boxed["bbox_xywh_1024"])
    run = write_run(tmp_path / "tiny+class", REALDATA, kind="class")
    assert main(["localize", str(run), "--method", "attention"]) == 0
    line = capsys.readouterr().out
    assert f"class-specific attention (one map per label) on {n_boxes} boxes" in line
    report = json.loads((run / "localization.json").read_text())
    control = json.loads((run / "localization_random.json").read_text())
    assert set(report) == set(control) == SCHEMA
    assert (
        (report["n_images"], report["n_boxes"])
        == (len(boxed), n_boxes)
        == (
            control["n_images"],
            control["n_boxes"],
        )
    )
    assert report["source"] == "chestxray14" and report["map_stage"] == "class"
    labels = {cell.split(":")[0] for cells in boxed["bbox_xywh_1024"] for cell in cells.split(";")}
    assert set(report["per_class"]) == {"Infiltration" if n == "Infiltrate" else n for n in labels}
    rows = localization_table([run])
    kinds = {(r["kind"], r["metric"]) for r in rows}
    for metric in ("pointing_game", "iobb@0.1", "energy_in_box"):
        assert ("run", metric) in kinds and ("control", metric) in kinds
    assert any(r["kind"] == "published" for r in rows)
