"""The Streamlit app, page by page, through `streamlit.testing.v1.AppTest` (no browser).

A session fixture builds a small, real set of runs: a phantom dataset, one attention (the paper's
spatial gate) and one baseline checkpoint for two backbones and a class-specific MobileNetV2 (64
px, untrained weights: what is checked is that the app shows what the models compute), evaluated
and localized by the project's own `evaluate` and `localize` code, the class model with a
two-epoch timeline written by `core.training.timeline`, plus one broken checkpoint. Uploads go
through AppTest's file_uploader.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from cxr_attention.app.settings import RUNS_ENV, SAMPLES_ENV
from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.explain.base import upsample
from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.attention import SpatialAttention
from cxr_attention.core.models.checkpoint import load_checkpoint, save_checkpoint
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
BACKBONES = ("mobilenetv2_100", "resnet18")
CLASS_RUN = "mobilenetv2_100+class"  # the class-specific model (CSRA head, output stride 16)
SIZE = 64
TIMEOUT = 180  # seconds per AppTest run: generous, the CI machine is shared


# --- the fixture: real runs, evaluated and localized --------------------------------------------


@dataclass(frozen=True)
class AppData:
    runs: Path  # folder of run folders
    samples: Path  # samples folder with samples.json
    data: Path  # the phantom dataset the runs were "trained" on


def _training(data_root: Path, fingerprint: str, val_auc: float) -> dict:
    return {
        "epochs": 1,
        "best_epoch": 1,
        "best_val_macro_auc": val_auc,
        "data": {
            "source": "phantom",
            "root": str(data_root),
            "fingerprint": fingerprint,
            "split": "official",
            "label_set": "all14",
        },
        "pretrained": None,
        "thresholds": {label: {"youden": 0.5, "f1": 0.4} for label in ALL14},
        "seed": 0,
    }


def _write_samples(index, folder: Path, count: int = 2) -> None:
    """Copy `count` phantom images that carry masks, with samples.json in the format of
    assets/make_samples.py (image, findings, boxes {label: [x, y, w, h]}, masks {label: file})."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for row in index.items.itertuples(index=False):
        masks = index.mask_paths(row.image_id)
        if not masks:
            continue
        shutil.copy(row.path, folder / row.image_id)
        for path in masks.values():
            shutil.copy(path, folder / path.name)
        boxes = index.boxes[index.boxes["image_id"] == row.image_id]
        entries.append(
            {
                "image": row.image_id,
                "findings": [label for label in index.labels if getattr(row, label) == 1],
                "masks": {label: path.name for label, path in masks.items()},
                "boxes": {b.label: [b.x, b.y, b.w, b.h] for b in boxes.itertuples(index=False)},
            }
        )
        if len(entries) == count:
            break
    note = "synthetic phantom films made by cxr-attention, not patient data"
    (folder / "samples.json").write_text(json.dumps({"note": note, "samples": entries}))


def _write_class_timeline(run: Path, model: AttentionClassifier, index) -> None:
    """Two epochs of a class model's timeline, as `fit` writes them (core.training.timeline): the
    model as saved, then with its class weights moved, so the maps change between epochs."""
    from cxr_attention.core.training.timeline import (
        epoch_maps,
        pick_timeline_images,
        write_epoch_maps,
        write_timeline_images,
    )

    films = pick_timeline_images(index, index.items, ALL14, SIZE)
    write_timeline_images(run, films)
    write_epoch_maps(run, epoch_maps(model, films, 1))
    with torch.no_grad():
        model.head.classifier.weight.add_(torch.randn_like(model.head.classifier.weight))
    write_epoch_maps(run, epoch_maps(model, films, 2))


def build_app_data(root: Path) -> AppData:
    """Phantom data, 5 checkpoints (2 backbones x spatial gate on/off, a class-specific
    MobileNetV2), evaluated and localized; the class model with a timeline."""
    from cxr_attention.core.data.phantom import generate_phantom
    from cxr_attention.core.data.sources import open_dataset
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.explain.localize_run import localize_run

    data = root / "phantom"
    generate_phantom(data, n=120, size=SIZE, seed=0, workers=1)
    index = open_dataset(data)
    runs = root / "runs"
    for i, backbone in enumerate(BACKBONES):
        for attention in (True, False):
            torch.manual_seed(i)
            model = AttentionClassifier(
                ModelConfig(backbone, ALL14, attention=attention, image_size=SIZE)
            ).eval()
            for gate in model.modules():
                if isinstance(gate, SpatialAttention):
                    # untrained gates start uniform (0.5 everywhere); give them some structure
                    torch.nn.init.ones_(gate.bn.weight)
            run = runs / (backbone + ("-att" if attention else ""))
            training = _training(data, index.fingerprint, 0.70 + 0.05 * attention)
            save_checkpoint(run / "checkpoint.pt", model, training)
            evaluate_run(run, n_resamples=20, progress=False, num_workers=0)  # no worker processes
            localize_run(run, method="attention" if attention else "gradcam", control=False)
    torch.manual_seed(2)
    config = ModelConfig(
        "mobilenetv2_100",
        ALL14,
        attention=True,
        attention_kind="class",
        output_stride=16,
        image_size=SIZE,
    )
    model = AttentionClassifier(config).eval()
    save_checkpoint(
        runs / CLASS_RUN / "checkpoint.pt", model, _training(data, index.fingerprint, 0.8)
    )
    evaluate_run(runs / CLASS_RUN, n_resamples=20, progress=False, num_workers=0)
    localize_run(runs / CLASS_RUN, method="attention", control=False)
    _write_class_timeline(runs / CLASS_RUN, model, index)
    (runs / "broken").mkdir()
    (runs / "broken" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    _write_samples(index, root / "samples")
    return AppData(runs, root / "samples", data)


@pytest.fixture(scope="session")
def app_data(tmp_path_factory) -> AppData:
    return build_app_data(tmp_path_factory.mktemp("app"))


@pytest.fixture
def app(app_data, monkeypatch) -> AppTest:
    """The app on the fixture's runs, first page run once."""
    monkeypatch.setenv(RUNS_ENV, str(app_data.runs))
    monkeypatch.setenv(SAMPLES_ENV, str(app_data.samples))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


# --- helpers ----------------------------------------------------------------------------------


def plotly(at: AppTest) -> dict[str, dict]:
    """Every plotly chart on the page, by its Streamlit key, as the figure dict."""
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def values(array) -> np.ndarray:
    """A plotly data array as numpy (plotly writes numpy arrays as base64 'bdata')."""
    if isinstance(array, dict) and "bdata" in array:
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        shape = array.get("shape")
        if isinstance(shape, str):
            shape = [int(side) for side in shape.split(",")]
        return flat.reshape(shape) if shape else flat
    return np.asarray(array, dtype=float)


def text_on_page(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [str(t.value.to_dict()) for t in at.table]
    return "\n".join(parts)


def probabilities_by_hand(checkpoint: Path, pixels: np.ndarray, ablate: bool = False) -> np.ndarray:
    """What a model outputs for an image, computed with core only (not through the app)."""
    loaded = load_checkpoint(checkpoint)
    x = config_input(model_view(pixels, loaded.config.image_size)[None], loaded.config)
    with torch.no_grad():
        logits = loaded.model.forward_with_maps(x, ablate_attention=ablate).logits
    return torch.sigmoid(logits)[0].numpy()


def png_bytes(side: int = 96) -> bytes:
    image = np.zeros((side, side + 10), np.uint8)
    cv2.circle(image, (side // 2, side // 2), side // 3, 180, -1)
    return cv2.imencode(".png", image)[1].tobytes()


def dicom_bytes(modality: str = "DX", side: int = 80) -> bytes:
    """An uncompressed 12-bit chest-like DICOM with patient identifiers."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        DigitalXRayImageStorageForPresentation,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.ViewPosition = "PA"
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    yy, xx = np.mgrid[:side, :side]
    body = ((yy - side / 2) / (side * 0.4)) ** 2 + ((xx - side / 2) / (side * 0.3)) ** 2 < 1
    ds.PixelData = np.where(body, 3000, 300).astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def backbones_view(at: AppTest) -> AppTest:
    """Switch Explore to the backbone columns (it opens on the mechanisms: the fixture has a
    class-specific model)."""
    at.radio(key="explore.view").set_value("backbones").run()
    assert not at.exception, at.exception
    return at


def class_map_by_hand(checkpoint: Path, pixels: np.ndarray, label: str) -> np.ndarray:
    """A class head's map of `label` at the view's size, from core's forward pass alone."""
    loaded = load_checkpoint(checkpoint)
    x = config_input(model_view(pixels, loaded.config.image_size)[None], loaded.config)
    with torch.no_grad():
        small = loaded.model.forward_with_maps(x).maps["class"][:, [ALL14.index(label)]]
    return upsample(small, (SIZE, SIZE))[0, 0].numpy()


def upload(at: AppTest, name: str, data: bytes, mime: str = "application/octet-stream") -> None:
    if at.radio(key="explore.source").value != "upload":
        at.radio(key="explore.source").set_value("upload").run()
    at.file_uploader(key="explore.upload").set_value((name, data, mime)).run()


# --- the registry and the command -------------------------------------------------------------


def test_registry_groups_variants_by_kind_and_lists_broken_runs(app_data):
    from cxr_attention.app.registry import scan_runs
    from cxr_attention.core.errors import ConfigError

    registry = scan_runs(app_data.runs)
    assert registry.backbones() == ["mobilenetv2_100", "resnet18"]  # paper backbone first
    best = registry.best("resnet18", "spatial")
    assert best.name == "resnet18-att" and best.kind == "spatial" and best.is_phantom
    assert best.title == "resnet18 + attention" and not best.class_specific
    assert registry.best("resnet18", None).name == "resnet18"
    assert registry.best("resnet18", "class") is None
    assert "synthetic phantom" in best.provenance and "0.750" in best.provenance
    # kinds per backbone, baseline first; the attention switch means the paper's gate
    assert registry.kinds("mobilenetv2_100") == [None, "spatial", "class"]
    assert registry.attention_kind("mobilenetv2_100") == "spatial"
    csra = registry.best("mobilenetv2_100", "class")
    assert csra.name == CLASS_RUN and csra.class_specific and csra.title.endswith("class attention")
    assert csra.final_map == "4 x 4 at 64 px (output stride 16)"
    assert registry.class_specific_backbones() == ["mobilenetv2_100"]
    with pytest.raises(ConfigError, match="attention kind True"):
        registry.best("resnet18", True)  # the bool of before kinds is refused, not misread
    assert len(registry.evaluated()) == 5 and len(registry.localized()) == 5
    [broken] = registry.broken
    assert broken.path.name == "broken" and "not a readable checkpoint" in broken.reason


def test_the_default_sample_has_a_lesion(app_data, tmp_path):
    from cxr_attention.app.images import default_sample, list_samples
    from cxr_attention.app.settings import SAMPLES_DIR

    shipped = default_sample(SAMPLES_DIR, list_samples(SAMPLES_DIR))
    assert shipped.name == "phantom_mass.png" and shipped.labels == ("Mass",) and shipped.masks
    # without a "default" in samples.json: the first film with a finding, not the normal one
    index = json.loads((app_data.samples / "samples.json").read_text())
    normal = {"image": "normal.png", "findings": [], "boxes": {}, "masks": {}}
    shutil.copy(app_data.samples / index["samples"][0]["image"], tmp_path / "normal.png")
    for entry in index["samples"]:
        for name in [entry["image"], *entry["masks"].values()]:
            shutil.copy(app_data.samples / name, tmp_path / name)
    index["samples"].insert(0, normal)
    (tmp_path / "samples.json").write_text(json.dumps(index))
    samples = list_samples(tmp_path)
    assert samples[0].name == "normal.png"
    assert default_sample(tmp_path, samples).name == index["samples"][1]["image"]


def test_runs_folder_from_script_arguments_then_environment():
    from cxr_attention.app.settings import DEFAULT_RUNS, runs_root

    env = {RUNS_ENV: "/from/env"}
    assert runs_root(["--runs", "/from/args"], env) == Path(
        "/from/args"
    )  # streamlit run ... -- --runs
    assert runs_root(["--runs=/eq"], env) == Path("/eq")
    assert runs_root([], env) == Path("/from/env")  # what `cxr-attention app --runs` sets
    assert runs_root([], {}) == DEFAULT_RUNS


def test_no_runs_says_how_to_get_some(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT).run()
    assert not at.exception
    [info] = at.info
    assert "cxr-attention demo" in info.value and "cxr-attention fit" in info.value
    assert not at.get("plotly_chart")


def test_app_command_refuses_a_missing_runs_folder(tmp_path, capsys):
    from cxr_attention.train.cli import main

    assert main(["app", "--runs", str(tmp_path / "nope"), "--headless"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "cxr-attention demo" in err


def test_app_command_line_through_the_console_script(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cxr_attention.train.cli", "app", "--runs", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_app_command_starts_streamlit_with_the_stated_limits(tmp_path):
    import socket

    from cxr_attention.app.settings import MAX_UPLOAD_MB
    from cxr_attention.train.commands.app import check_port, main_script, streamlit_command

    command = streamlit_command(tmp_path, 8765, headless=True)
    assert Path(command[4]) == main_script() and main_script().is_file()
    flags = dict(zip(command[5::2], command[6::2], strict=False))
    assert flags["--server.maxUploadSize"] == str(MAX_UPLOAD_MB)
    assert flags["--client.showErrorDetails"] == "none"  # "false" would still show the trace
    assert flags["--server.headless"] == "true"
    assert command[-2:] == ["--runs", str(tmp_path)]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(Exception, match=f"port {port} is already in use"):
            check_port(port)


# --- Explore an image ---------------------------------------------------------------------------


def test_explore_opens_on_the_mechanisms_of_a_lesion_sample(app, app_data):
    """Default page: a sample with a lesion, its finding explained, and for MobileNetV2 (the
    backbone with a class model) the paper's gate, the class map and the baseline's Grad-CAM side
    by side on one colour scale, the lesion outlined, their meaning said under the row."""
    sample = json.loads((app_data.samples / "samples.json").read_text())["samples"][0]
    finding = sample["findings"][0]
    assert app.radio(key="explore.view").value == "mechanisms"
    assert app.selectbox(key="explore.sample").value == sample["image"]
    assert app.selectbox(key="explore.label").value == finding  # the sample's finding
    assert app.selectbox(key="explore.mechanisms.backbone").value == "mobilenetv2_100"
    assert not app.toggle(key="explore.lungs").value  # phantom models: no lung outline at first
    charts = plotly(app)
    row = ["mech-spatial", "mech-class", "mech-gradcam"]
    assert not any(t.get("name") == "lung fields" for k in row for t in charts[k]["data"])
    assert [k for k in charts if k.startswith("mech-")] == row  # side by side, in this order
    titles = [charts[k]["layout"]["title"]["text"] for k in row]
    assert titles[0] == "Gate map · one for all labels<br><sup>stage4 · 2x2 map</sup>"
    assert finding not in titles[0]  # a gate is not titled with a label
    assert titles[1] == f"Class map · {finding}<br><sup>4x4 map</sup>"
    # Grad-CAM from the deepest stage with a map of at least 8 x 8 (the final one is 2 x 2 at 64 px);
    # a model with no gate that fine keeps its own
    assert titles[2] == f"Grad-CAM · {finding}<br><sup>stage2 · 8x8 map</sup>"
    for key in row:
        heat = charts[key]["data"][1]
        assert (heat["zmin"], heat["zmax"]) == (0.0, 1.0)  # one colour scale
        outlines = [t for t in charts[key]["data"] if t["type"] == "scatter"]
        assert len(outlines) >= len(sample["masks"])  # the lesion outlined on every map
    pixels = load_radiograph(app_data.samples / sample["image"]).pixels
    class_run = app_data.runs / CLASS_RUN / "checkpoint.pt"
    np.testing.assert_allclose(
        values(charts["mech-class"]["data"][1]["z"]),
        class_map_by_hand(class_run, pixels, finding),
        atol=1e-5,
    )
    page = text_on_page(app)
    assert "The gate map is the same for every label" in page  # under the label selector
    assert "is one map for all 14 labels" in page and f"belongs to {finding} alone" in page
    assert f"the green outline is the {finding} lesion" in page
    expected = probabilities_by_hand(class_run, pixels)[ALL14.index(finding)]
    assert f"P({finding}) = {expected:.2f}" in page
    assert "MobileNetV2 (baseline)" in page  # whose Grad-CAM it is

    # another label: the class map and Grad-CAM follow it, the gate map does not change
    other = next(label for label in ALL14 if label != finding)
    app.selectbox(key="explore.label").set_value(other).run()
    assert not app.exception and not app.error
    again = plotly(app)
    np.testing.assert_array_equal(
        values(again["mech-spatial"]["data"][1]["z"]),
        values(charts["mech-spatial"]["data"][1]["z"]),
    )
    new_class = values(again["mech-class"]["data"][1]["z"])
    np.testing.assert_allclose(new_class, class_map_by_hand(class_run, pixels, other), atol=1e-5)
    assert not np.allclose(new_class, values(charts["mech-class"]["data"][1]["z"]))
    assert again["mech-class"]["layout"]["title"]["text"].startswith(f"Class map · {other}")
    assert f"This film has no {other} lesion" in text_on_page(app)

    # a backbone without a class model says how to train one; Grad-CAM of its gate model
    app.selectbox(key="explore.mechanisms.backbone").set_value("resnet18").run()
    app.selectbox(key="explore.mechanisms.gradcam_of").set_value("spatial").run()
    assert not app.exception and not app.error
    assert "--attention-kind class" in " ".join(i.value for i in app.info)
    assert set(k for k in plotly(app) if k.startswith("mech-")) == {"mech-spatial", "mech-gradcam"}


def test_explore_columns_choose_the_attention_kind(app, app_data):
    """The backbone columns: the switch means the paper's gate; a kind select picks the class
    model; a gate's map is said to be the same for every label."""
    backbones_view(app)
    label = app.selectbox(key="explore.label").value
    kind = app.selectbox(key="explore.kind.mobilenetv2_100")
    assert kind.value == "spatial" and kind.options == [
        "spatial gate (CBAM, the paper's)",
        "class-specific attention (CSRA)",
    ]
    captions = " ".join(c.value for c in app.caption)
    assert (
        "The gate maps of MobileNetV2 + attention and resnet18 + attention are class-agnostic"
        in (captions)
    )
    kind.set_value("class").run()
    assert not app.exception and not app.error
    assert "MobileNetV2 + class attention" in [s.value for s in app.subheader]
    chart = plotly(app)["map-mobilenetv2_100"]
    assert chart["layout"]["title"]["text"].startswith(f"Class map · {label}")
    sample = json.loads((app_data.samples / "samples.json").read_text())["samples"][0]
    pixels = load_radiograph(app_data.samples / sample["image"]).pixels
    np.testing.assert_allclose(
        values(chart["data"][1]["z"]),
        class_map_by_hand(app_data.runs / CLASS_RUN / "checkpoint.pt", pixels, label),
        atol=1e-5,
    )
    # the shared scale keeps a class map on its own 0-1 scale, as it does a gate's
    app.toggle(key="explore.shared_scale").set_value(True).run()
    shared = plotly(app)
    for backbone in BACKBONES:
        assert (
            shared[f"map-{backbone}"]["data"][1]["zmin"],
            shared[f"map-{backbone}"]["data"][1]["zmax"],
        ) == (0.0, 1.0)
    assert "resnet18 + attention is class-agnostic" in " ".join(c.value for c in app.caption)


def test_explore_sample_shows_what_the_models_compute(app, app_data):
    """Backbone columns: the default sample, two backbone columns with attention on."""
    backbones_view(app)
    charts = plotly(app)
    assert {"prob-mobilenetv2_100", "prob-resnet18", "map-mobilenetv2_100", "map-resnet18"} <= set(
        charts
    )
    sample = json.loads((app_data.samples / "samples.json").read_text())["samples"][0]
    pixels = load_radiograph(app_data.samples / sample["image"]).pixels
    for backbone in BACKBONES:
        bars, ticks = charts[f"prob-{backbone}"]["data"]
        expected = probabilities_by_hand(
            app_data.runs / f"{backbone}-att" / "checkpoint.pt", pixels
        )
        np.testing.assert_allclose(values(bars["x"]), expected, atol=1e-5)
        assert list(bars["y"]) == list(ALL14)
        np.testing.assert_allclose(values(ticks["x"]), 0.5)  # the checkpoint's Youden thresholds
        positives = [label for label, p in zip(ALL14, expected, strict=True) if p >= 0.5]
        shown = [m.value for m in app.markdown if m.value.startswith("Above the validation")]
        assert any(all(f"**{label}**" in text for label in positives) for text in shown)
        heat = charts[f"map-{backbone}"]["data"][1]
        assert heat["type"] == "heatmap" and values(heat["z"]).shape == (SIZE, SIZE)
    # phantom provenance is said plainly, and the sample's truth is drawn and listed
    assert any("synthetic phantom" in w.value for w in app.warning)
    truth = ", ".join(sample["findings"]) or "no finding"
    assert f"**Ground truth:** {truth}" in text_on_page(app)
    outlines = [t for t in charts["map-resnet18"]["data"] if t["type"] == "scatter"]
    assert len(outlines) >= len(sample["masks"])


def test_explore_upload_and_attention_switches(app, app_data):
    backbones_view(app)
    data = png_bytes()
    upload(app, "film.png", data, "image/png")
    assert not app.exception and not app.error
    pixels = load_radiograph(data).pixels
    runs = app_data.runs

    def shown(backbone: str) -> np.ndarray:
        return values(plotly(app)[f"prob-{backbone}"]["data"][0]["x"])

    np.testing.assert_allclose(
        shown("resnet18"),
        probabilities_by_hand(runs / "resnet18-att/checkpoint.pt", pixels),
        atol=1e-5,
    )
    # attention off: the baseline checkpoint of the same backbone; the other column is untouched
    app.toggle(key="explore.attention.resnet18").set_value(False).run()
    np.testing.assert_allclose(
        shown("resnet18"), probabilities_by_hand(runs / "resnet18/checkpoint.pt", pixels), atol=1e-5
    )
    assert "resnet18 (baseline)" in [s.value for s in app.subheader]
    assert app.toggle(key="explore.ablate.resnet18").disabled
    # the baseline has no attention map: the column says so and shows Grad-CAM
    assert any("baseline without attention" in c.value for c in app.caption)
    assert "Grad-CAM" in plotly(app)["map-resnet18"]["layout"]["title"]["text"]
    # ablation at inference: every gate set to 1
    app.toggle(key="explore.ablate.mobilenetv2_100").set_value(True).run()
    np.testing.assert_allclose(
        shown("mobilenetv2_100"),
        probabilities_by_hand(runs / "mobilenetv2_100-att/checkpoint.pt", pixels, ablate=True),
        atol=1e-5,
    )
    assert any("gates ablated" in s.value for s in app.subheader)
    assert not app.exception


def test_explore_methods_scale_and_difference(app, app_data):
    backbones_view(app)
    app.selectbox(key="explore.method").set_value("integrated_gradients").run()
    app.toggle(key="explore.difference").set_value(True).run()
    assert not app.exception and not app.error
    charts = plotly(app)
    assert "Integrated Gradients" in charts["map-mobilenetv2_100"]["layout"]["title"]["text"]
    # difference attention on - off, per label, equals the two columns' own numbers
    sample = json.loads((app_data.samples / "samples.json").read_text())["samples"][0]
    pixels = load_radiograph(app_data.samples / sample["image"]).pixels
    on = probabilities_by_hand(app_data.runs / "resnet18-att/checkpoint.pt", pixels)
    off = probabilities_by_hand(app_data.runs / "resnet18/checkpoint.pt", pixels)
    np.testing.assert_allclose(
        values(charts["dprob-resnet18"]["data"][0]["x"]), on - off, atol=1e-5
    )
    diff = values(charts["dmap-resnet18"]["data"][1]["z"])
    assert diff.shape == (SIZE, SIZE) and diff.min() >= -1 and diff.max() <= 1
    # each map on its own scale by default: Integrated Gradients maps divided by their maximum
    assert {charts[f"map-{b}"]["data"][1]["zmax"] for b in BACKBONES} == {1.0}
    # shared: one range for both columns, the larger raw maximum
    app.toggle(key="explore.shared_scale").set_value(True).run()
    shared = plotly(app)
    ranges = {shared[f"map-{b}"]["data"][1]["zmax"] for b in BACKBONES}
    assert len(ranges) == 1 and ranges != {1.0}
    raw_max = max(values(shared[f"map-{b}"]["data"][1]["z"]).max() for b in BACKBONES)
    assert ranges.pop() == pytest.approx(raw_max, rel=1e-5)


def test_bad_uploads_are_one_line_and_the_app_keeps_working(app):
    huge_png = bytearray(png_bytes())
    huge_png[16:24] = (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big")  # IHDR claims 400 MP
    bad = [
        ("notes.png", b"this is not an image at all"),
        ("ct.dcm", dicom_bytes("CT")),
        ("cut.png", png_bytes()[:60]),
        ("huge.png", bytes(huge_png)),
        ("empty.jpg", b""),
    ]
    for name, data in bad:
        upload(app, name, data)
        assert not app.exception, name
        [error] = app.error
        assert "\n" not in error.value and "Traceback" not in error.value
        assert name in error.value, error.value
        assert not app.get("plotly_chart")
    upload(app, "good.png", png_bytes(), "image/png")
    assert not app.error and len(app.get("plotly_chart")) >= 4
    assert "No lesion is outlined: this image carries no ground truth" in text_on_page(app)


def test_dicom_identifiers_hidden_until_asked(app):
    upload(app, "chest.dcm", dicom_bytes("DX"), "application/dicom")
    assert not app.exception and not app.error
    page = text_on_page(app)
    assert "dicom" in page and "PA" in page  # metadata summary shown
    assert "Doe^Jane" not in page and "MRN-0042" not in page and "hidden" in page
    app.toggle(key="explore.identifiers").set_value(True).run()
    page = text_on_page(app)
    assert "Doe^Jane" in page and "MRN-0042" in page


def test_downloads_hold_the_shown_numbers_and_overlay(app, app_data):
    from cxr_attention.app import columns, images
    from cxr_attention.app.registry import scan_runs

    labels = [b.label for b in backbones_view(app).get("download_button")]
    assert "Download predictions CSV" in labels and labels.count("Download overlay PNG") == 2
    registry = scan_runs(app_data.runs)
    study = images.read_upload("film.png", png_bytes())
    with_streamlit_caches = [
        columns.build_column(registry, b, "spatial", False, study, "Effusion", "attention", False)
        for b in BACKBONES
    ]
    frame = columns.predictions_frame(study, with_streamlit_caches)
    assert len(frame) == 2 * len(ALL14)
    row = frame[(frame.backbone == "resnet18") & (frame.label == "Effusion")].iloc[0]
    expected = probabilities_by_hand(app_data.runs / "resnet18-att/checkpoint.pt", study.pixels)
    assert row.probability == pytest.approx(expected[ALL14.index("Effusion")], abs=1e-5)
    assert row.positive == (row.probability >= 0.5) and row.trained_on == "phantom"
    assert row.attention_kind == "spatial"
    column = with_streamlit_caches[0]
    png = columns.overlay_png(column.view, column.explanation.heat, 0.5, (0.0, 1.0))
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (SIZE, SIZE, 3)
    assert not np.array_equal(decoded[..., 0], decoded[..., 2])  # coloured, not the gray view


# --- the other pages --------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["compare", "failures", "localization", "timeline", "about"])
def test_a_page_opened_first_by_its_address_works(app_data, monkeypatch, page):
    """A bookmarked address (http://localhost:8501/compare) on a freshly started server: the page
    runs under the app's navigation and defaults. (A folder named app/pages once made Streamlit
    run such a page on its own, without them: KeyError 'compare.runs'.)"""
    monkeypatch.setenv(RUNS_ENV, str(app_data.runs))
    monkeypatch.setenv(SAMPLES_ENV, str(app_data.samples))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    assert any("model(s)" in c.value for c in at.sidebar.caption)  # the app's own sidebar


def test_compare_page_tables_delong_roc_calibration(app, app_data):
    from cxr_attention.core.metrics import compare_runs_delong, roc_curve_points
    from cxr_attention.core.runs import RunFolder

    app.switch_page("views/compare.py").run()
    assert not app.exception and not app.error
    metrics = RunFolder(app_data.runs / "resnet18-att").metrics()
    table = app.dataframe[0].value
    assert table.loc["macro AUC", "resnet18-att"].startswith(f"{metrics['macro_auc']:.3f} [")
    charts = plotly(app)
    att = RunFolder(app_data.runs / "resnet18-att").predictions()
    base = RunFolder(app_data.runs / "resnet18").predictions()
    delong = compare_runs_delong(att, base, ALL14)
    bars = charts["delta-resnet18-att-resnet18"]["data"][0]
    assert delong["difference"].notna().any()  # the fixture leaves some label testable
    np.testing.assert_allclose(values(bars["y"]), delong["difference"].to_numpy(), equal_nan=True)
    label = app.selectbox(key="compare.label").value
    curve = roc_curve_points(att[f"y_true_{label}"], att[f"y_score_{label}"])
    names = [t["name"] for t in charts["roc"]["data"]]
    assert any(f"AUC {curve.auc:.3f}" in n and "resnet18-att" in n for n in names)
    assert "calibration" in charts
    app.slider(key="compare.max_fpr").set_value(0.2).run()
    assert plotly(app)["roc"]["layout"]["xaxis"]["range"] == [0, 0.2]
    assert any("synthetic phantom" in w.value for w in app.warning)


def test_an_auc_difference_of_a_thousandth_is_not_drawn_as_an_effect():
    """The attention-minus-baseline plot: a dot with its confidence interval on an axis of at
    least +/- DIFFERENCE_SPAN around a drawn zero line, so noise stays small; a wide interval
    widens the axis to hold it."""
    from cxr_attention.app.figures import DIFFERENCE_SPAN, auc_difference_figure

    tiny = auc_difference_figure(["Mass"], [-0.001], [-0.004], [0.002], [0.8]).to_dict()
    assert tuple(tiny["layout"]["yaxis"]["range"]) == (-DIFFERENCE_SPAN, DIFFERENCE_SPAN)
    [dot] = tiny["data"]
    np.testing.assert_allclose(values(dot["error_y"]["array"]), [0.003])
    np.testing.assert_allclose(values(dot["error_y"]["arrayminus"]), [0.003])
    assert any(shape["y0"] == 0 == shape["y1"] for shape in tiny["layout"]["shapes"])  # zero line
    wide = auc_difference_figure(
        ["Mass", "Edema"], [0.02, 0.1], [-0.03, -0.05], [0.07, 0.25], [1, 1]
    )
    low, high = wide.to_dict()["layout"]["yaxis"]["range"]
    assert low == -high and high == pytest.approx(0.25 * 1.1)


def test_failures_page_shows_the_most_confident_errors(app, app_data):
    from cxr_attention.core.runs import RunFolder

    predictions = RunFolder(app_data.runs / "mobilenetv2_100-att").predictions()
    # a label with at least one false positive at its validation threshold (0.5 in the fixture)
    label = next(
        label
        for label in ALL14
        if ((predictions[f"y_true_{label}"] == 0) & (predictions[f"y_score_{label}"] >= 0.5)).any()
    )
    app.switch_page("views/failures.py").run()
    app.selectbox(key="failures.run").set_value("mobilenetv2_100-att").run()
    app.selectbox(key="failures.label").set_value(label).run()
    assert not app.exception and not app.error
    negatives = predictions[predictions[f"y_true_{label}"] == 0]
    flagged = negatives[negatives[f"y_score_{label}"] >= 0.5]
    worst = flagged.sort_values(f"y_score_{label}", ascending=False).iloc[0]
    buttons = [b for b in app.button if b.key and b.key.startswith("open-fp-")]
    assert buttons[0].key == f"open-fp-{worst.image_id}"
    buttons[0].click().run()
    assert not app.exception and not app.error
    assert {"case-attention", "case-gradcam"} <= set(plotly(app))
    assert any(worst.image_id in s.value for s in app.subheader)
    title = plotly(app)["case-attention"]["layout"]["title"]["text"]
    assert "Gate map · one for all labels (stage4 · 2x2 map)" in title

    # a class model's own map is the label's: titled with it, its kind named above the gallery
    app.selectbox(key="failures.run").set_value(CLASS_RUN).run()
    assert not app.exception and not app.error
    assert any("class-specific attention (CSRA)" in c.value for c in app.caption)
    label = app.selectbox(key="failures.label").value
    opened = [b for b in app.button if b.key and b.key.startswith(("open-fp-", "open-fn-"))]
    opened[0].click().run()
    assert not app.exception and not app.error
    assert f"Class map · {label}" in plotly(app)["case-attention"]["layout"]["title"]["text"]


def test_localization_page_charts_the_scores(app, app_data):
    from cxr_attention.core.runs import RunFolder

    app.switch_page("views/localization.py").run()
    assert not app.exception and not app.error
    loc = RunFolder(app_data.runs / "mobilenetv2_100-att").localization()
    chart = plotly(app)["loc-per-class"]
    series = {t["name"]: t for t in chart["data"]}
    bars = series["mobilenetv2_100-att"]
    expected = [loc["per_class"][label]["pointing_game"] for label in bars["x"]]
    np.testing.assert_allclose(values(bars["y"]), np.array(expected, dtype=float), equal_nan=True)
    overall = app.dataframe[0].value.set_index("run")
    assert overall.loc["mobilenetv2_100-att", "method"] == "attention"
    assert overall.loc["mobilenetv2_100-att", "attention"] == "spatial gate (CBAM, the paper's)"
    assert overall.loc[CLASS_RUN, "attention"] == "class-specific attention (CSRA)"
    assert overall.loc[CLASS_RUN, "map stage"] == "class"
    assert any(key.startswith("gal-") for key in plotly(app))


def test_about_page_cards_limitations_and_broken_runs(app):
    app.switch_page("views/about.py").run()
    assert not app.exception
    page = text_on_page(app)
    assert "not a medical device" in page.lower() and "NLP" in page
    assert len(app.expander) >= 6  # five model cards and the broken-runs list
    assert "class-specific attention (CSRA): one map per label" in page
    assert "spatial gate (CBAM, the paper's): one map for every label" in page
    assert "4 x 4 at 64 px (output stride 16)" in page
    assert any("not a readable checkpoint" in m.value for m in app.markdown)
    assert any("synthetic phantom" in w.value for w in app.warning)


def test_timeline_replays_the_class_map_of_the_shown_finding(app, app_data):
    from cxr_attention.core.training.timeline import read_timeline

    app.switch_page("views/timeline.py").run()
    assert not app.exception and not app.error
    assert app.selectbox(key="timeline.run").value == CLASS_RUN  # the one with a timeline
    timeline = read_timeline(app_data.runs / CLASS_RUN)
    finding = timeline.images.findings[0]

    def shown_and_recorded(epoch: int) -> tuple[np.ndarray, np.ndarray]:
        chart = plotly(app)["timeline-class"]
        assert chart["layout"]["title"]["text"].startswith(f"Class map of {finding}<br>")
        heat = chart["data"][1]
        assert (heat["zmin"], heat["zmax"]) == (0.0, 1.0)  # a probability, on its own scale
        small = next(m for m in timeline.epochs if m.epoch == epoch).gates["class"][0]
        recorded = upsample(torch.from_numpy(small)[None, None], (SIZE, SIZE))[0, 0].numpy()
        return values(heat["z"]), recorded

    last, recorded = shown_and_recorded(2)
    np.testing.assert_allclose(last, recorded, atol=1e-6)
    app.select_slider(key="timeline.epoch").set_value(1).run()
    assert not app.exception
    first, recorded = shown_and_recorded(1)
    np.testing.assert_allclose(first, recorded, atol=1e-6)
    assert not np.allclose(first, last)  # the maps changed between the epochs
    names = [t["name"] for t in plotly(app)["timeline-curves"]["data"]]
    assert "class map inside the lesion" in names
    assert any("whose class map peaks on their lesion" in c.value for c in app.caption)


def test_models_load_once_and_are_shared(app, app_data):
    from cxr_attention.app import models

    path = str(app_data.runs / "resnet18-att" / "checkpoint.pt")
    mtime = Path(path).stat().st_mtime
    first = models.load_model(path, mtime)
    backbones_view(app).toggle(key="explore.shared_scale").set_value(True).run()
    assert models.load_model(path, mtime) is first  # st.cache_resource: no reload per click
