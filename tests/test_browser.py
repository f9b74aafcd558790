"""The app in a real browser: Debian's Chromium driven by Playwright.

Starts `cxr-attention --debug app` on a free localhost port as a user does (fresh HOME, stdin not a
terminal), sees the Explore page open on the mechanisms of a lesion sample (the paper's gate, the
class map of its finding and Grad-CAM, side by side), then in the backbone columns uploads a PNG
and a DICOM, switches attention off and on, and checks that probabilities and a map appear and
that no exception reaches the page. Then checks that the upload left no trace:
the DICOM's patient identifiers, its bytes and the uploaded file names appear neither in the server's
log nor in any file under its HOME, TMPDIR, working folder or runs folder. The server logs
Streamlit at debug level, which writes every line the default level writes and more: a trace
absent from the debug log is absent from the default one too, so one server checks both.
Then, in the same browser session (as one user goes on), uploads a phantom film, goes back to the
mechanisms and switches the lung fields on. Screenshots go to tmp_path and are copied to
tests/artifacts/ for a person to look at.

Every step waits for what a user would see (the new image's caption, the switched model's name):
the script's run state is transient, and a second rerun may begin at any moment on a busy machine.

Skipped when /usr/bin/chromium is absent, unless CXR_REQUIRE_BROWSER=1 (CI), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import torch
from playwright.sync_api import expect, sync_playwright

from tests.test_app import dicom_bytes
from tests.test_serve import Server, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SIZE = 128
RUN_TIMEOUT_MS = 180_000
# Uploaded file names, distinctive so that any trace of them can be found.
PNG_NAME = "film-5b1e93.png"
DICOM_NAME = "jane-doe-chest-7f3a9c.dcm"
BAD_NAME = "notes-c0d2e8.png"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)"
    if os.environ.get("CXR_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " — CXR_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(reason)


def _build_runs(root: Path) -> tuple[Path, Path, Path]:
    """A spatial-gate, a class-specific and a baseline MobileNetV2 (128 px, phantom provenance),
    two samples and the phantom they came from."""
    from cxr_attention.core.data.phantom import generate_phantom
    from cxr_attention.core.data.sources import open_dataset
    from cxr_attention.core.labels import ALL14
    from cxr_attention.core.models.attention import SpatialAttention
    from cxr_attention.core.models.checkpoint import save_checkpoint
    from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
    from tests.test_app import _training, _write_samples

    data = root / "phantom"
    generate_phantom(data, n=12, size=256, seed=1, workers=1)
    index = open_dataset(data)
    runs = root / "runs"
    for kind in ("spatial", "class", None):
        torch.manual_seed(0)
        stride = 16 if kind == "class" else 32  # the class map 8 x 8, as in the demo zoo
        config = ModelConfig(
            "mobilenetv2_100",
            ALL14,
            attention=kind is not None,
            attention_kind=kind or "spatial",
            output_stride=stride,
            image_size=SIZE,
        )
        model = AttentionClassifier(config).eval()
        for gate in model.modules():
            if isinstance(gate, SpatialAttention):
                torch.nn.init.ones_(gate.bn.weight)  # a non-uniform map from untrained weights
        name = config.variant
        save_checkpoint(
            runs / name / "checkpoint.pt", model, _training(data, index.fingerprint, 0.7)
        )
    _write_samples(index, root / "samples")
    return runs, root / "samples", data


@dataclass
class Zoo:
    runs: Path
    samples: Path
    phantom: Path

    @property
    def finding(self) -> str:
        """The finding of the sample the Explore page opens on (the first with one)."""
        index = json.loads((self.samples / "samples.json").read_text())
        return next(s["findings"][0] for s in index["samples"] if s["findings"])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Zoo:
    _require_browser()
    runs, samples, phantom = _build_runs(tmp_path_factory.mktemp("browser"))
    return Zoo(runs, samples, phantom)


@pytest.fixture(scope="module")
def served(zoo, tmp_path_factory) -> Iterator[Server]:
    """`cxr-attention --debug app --headless` on a free port, as a user starts it (see
    tests/test_serve): Streamlit's log at debug level, a superset of the default level's."""
    env = {"CXR_ATTENTION_SAMPLES": str(zoo.samples)}
    flags = ("--headless", "--debug")
    with serving(tmp_path_factory.mktemp("server"), zoo.runs, *flags, env=env) as server:
        yield server


def _idle(page) -> None:
    """Wait until no script run is in progress.

    Not a check of anything: a rerun may begin right after, so callers wait for what the user
    should see (Playwright's `expect` retries until it is there).
    """
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=RUN_TIMEOUT_MS
    )


def _shows(page, text: str) -> None:
    expect(page.get_by_text(text).first).to_be_visible(timeout=RUN_TIMEOUT_MS)


def _assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Traceback" not in page.content()


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)
    return path


def _upload(page, path: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))


@pytest.fixture(scope="module")
def page(served):
    """One user's browser session on the app, which the module's tests walk in order (the second
    goes on from wherever the first left the page: it chooses Upload and uploads its own film).
    Opens on the default page: a phantom sample with its ground truth, the mechanisms side by side.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            # reduced motion, as many users set it: Chromium then animates no spinner or
            # skeleton while a script runs, a third less of its CPU on 2 cores the server shares
            page = browser.new_page(
                viewport={"width": 1500, "height": 2600}, reduced_motion="reduce"
            )
            page.goto(served.url, timeout=RUN_TIMEOUT_MS)
            _shows(page, "All maps share one colour scale")
            yield page
        finally:
            browser.close()


def _assert_side_by_side(page, keys: list[str]) -> None:
    """The maps of the charts `keys` in one row, left to right, each drawn at the same size (the
    plot areas, whatever their titles and colour bars say)."""
    boxes = []
    for key in keys:
        chart = page.locator(f".st-key-{key}")
        expect(chart.locator(".heatmaplayer")).to_be_attached(timeout=RUN_TIMEOUT_MS)
        boxes.append(chart.locator(".nsewdrag").first.bounding_box())
    assert all(abs(b["y"] - boxes[0]["y"]) < 2 for b in boxes), boxes
    assert [b["x"] for b in boxes] == sorted(b["x"] for b in boxes), boxes
    assert all(b["x"] + b["width"] <= c["x"] + 1 for b, c in pairwise(boxes)), boxes
    assert all(abs(b["width"] - boxes[0]["width"]) < 2 for b in boxes), boxes


def _switch_to_upload(page) -> None:
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Upload", exact=True).click(timeout=RUN_TIMEOUT_MS)
    expect(page.locator('[data-testid="stFileUploaderDropzoneInput"]')).to_be_attached(
        timeout=RUN_TIMEOUT_MS
    )


def _dicom(folder: Path) -> tuple[Path, list[bytes]]:
    """A DICOM named DICOM_NAME with PatientName Doe^Jane; the byte strings no trace may hold."""
    path = folder / DICOM_NAME
    path.write_bytes(dicom_bytes("DX", side=160))
    uid = pydicom.dcmread(path).SOPInstanceUID  # unique to these bytes: stands for a stored copy
    names = [Path(n).stem.encode() for n in (PNG_NAME, DICOM_NAME, BAD_NAME)]
    return path, [b"Doe^Jane", b"Jane", b"MRN-0042", str(uid).encode(), *names]


def _assert_no_trace(server: Server, runs: Path, secrets: list[bytes]) -> None:
    """No secret in the server's output, nor in any file under the folders it could write to."""
    log = server.log.read_bytes()
    assert log, "the server log is empty: nothing was checked"
    for secret in secrets:
        assert secret not in log, f"{secret!r} is in the server log"
    for folder in (server.home, server.tmp, server.cwd, runs):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                for secret in secrets:
                    assert secret not in data, f"{secret!r} is in {path}"


def test_upload_png_and_dicom_switch_attention(page, served, zoo, tmp_path):
    png = tmp_path / PNG_NAME
    image = np.full((300, 260), 25, np.uint8)
    cv2.ellipse(image, (130, 150), (100, 130), 0, 0, 360, 170, -1)
    cv2.circle(image, (90, 120), 18, 230, -1)
    cv2.imwrite(str(png), image)
    dicom, secrets = _dicom(tmp_path)
    charts = '[data-testid="stPlotlyChart"]'

    _idle(page)
    assert page.get_by_text("Trained on synthetic phantom radiographs").count() >= 1
    _assert_no_exception(page)
    # the three maps of the lesion sample's finding, side by side, the lesion outlined
    finding = zoo.finding
    row = ["mech-spatial", "mech-class", "mech-gradcam"]
    _assert_side_by_side(page, row)
    titles = [page.locator(f".st-key-{key} .gtitle").text_content() for key in row]
    assert titles[0].startswith("Gate map · one for all labels"), titles
    assert titles[1].startswith(f"Class map · {finding}"), titles
    assert titles[2].startswith(f"Grad-CAM · {finding}"), titles
    for key in row:  # the lesion's mask outline on every map
        assert page.locator(f".st-key-{key} .scatterlayer .trace").count() >= 1
    _shows(page, "The gate map is the same for every label")
    _shows(page, f"belongs to {finding} alone")
    _shot(page, tmp_path, "explore_mechanisms")

    page.get_by_text("Backbones side by side", exact=True).click()
    _shows(page, "Above the validation threshold")
    _shows(page, "is class-agnostic")
    _idle(page)
    _assert_no_exception(page)
    _shot(page, tmp_path, "explore_sample")

    _switch_to_upload(page)
    _upload(page, png)
    _shows(page, f"{PNG_NAME}: 260 x 300 px as given")
    expect(page.locator(charts).nth(2)).to_be_attached(timeout=RUN_TIMEOUT_MS)
    expect(page.locator(f"{charts} .heatmaplayer").first).to_be_attached(
        timeout=RUN_TIMEOUT_MS
    )  # probabilities, map, model view
    _shows(page, "MobileNetV2 + attention")
    _idle(page)
    expect(page.get_by_text("Above the validation threshold")).to_have_count(
        1, timeout=RUN_TIMEOUT_MS
    )
    _assert_no_exception(page)
    _shot(page, tmp_path, "explore_png_attention_on")

    page.get_by_text("Attention", exact=True).first.click()
    _shows(page, "MobileNetV2 (baseline)")
    _shows(page, "showing Grad-CAM")
    expect(page.locator(f"{charts} .heatmaplayer").first).to_be_attached(timeout=RUN_TIMEOUT_MS)
    _idle(page)
    _assert_no_exception(page)
    _shot(page, tmp_path, "explore_png_attention_off")

    _upload(page, dicom)
    _shows(page, f"{DICOM_NAME}: 160 x 160 px as given")
    _shows(page, "DICOM metadata")
    _idle(page)
    expect(page.get_by_text("Above the validation threshold")).to_have_count(
        1, timeout=RUN_TIMEOUT_MS
    )
    assert "Doe^Jane" not in page.content()  # identifiers hidden by default
    _assert_no_exception(page)
    _shot(page, tmp_path, "explore_dicom")

    bad = tmp_path / BAD_NAME
    bad.write_bytes(b"this is not an image")
    _upload(page, bad)
    alert = page.locator('[data-testid="stAlertContentError"]')
    expect(alert).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(alert).to_contain_text(BAD_NAME, timeout=RUN_TIMEOUT_MS)
    _idle(page)
    assert "\n" not in alert.inner_text().strip()
    _assert_no_exception(page)
    _shot(page, tmp_path, "explore_bad_upload")

    assert "Beginning script thread" in served.output()  # a debug-level line: the level was on
    _assert_no_trace(served, zoo.runs, secrets)


def _film_whose_class_map_peaks_outside_the_lungs(zoo: Zoo) -> Path:
    """A phantom film on which the class model's map of the page's label peaks outside the lung
    fields (by hand, with core: the shipped lung model's fields, core's score)."""
    from cxr_attention.core.data.preprocess import config_input, model_view
    from cxr_attention.core.data.radiograph import load_radiograph
    from cxr_attention.core.explain import explain
    from cxr_attention.core.explain.lung_scores import film_area, score_in_lungs
    from cxr_attention.core.lungs.segment import segment_lungs
    from cxr_attention.core.lungs.shipped import shipped_lung_model
    from cxr_attention.core.models.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(zoo.runs / "mobilenetv2_100+class" / "checkpoint.pt")
    lung_model = shipped_lung_model()
    for film in sorted((zoo.phantom / "images").glob("*.png")):
        radiograph = load_radiograph(film)
        fields = segment_lungs(radiograph, lung_model)
        if not fields.plausible:
            continue
        x = config_input(model_view(radiograph.pixels, SIZE)[None], checkpoint.config)
        explained = explain(checkpoint.model, x, zoo.finding, "attention")
        area = film_area(radiograph.height, radiograph.width, SIZE)
        lungs = fields.in_view(SIZE)
        if score_in_lungs(explained.map(0), lungs, area, explained.ranked(0)).flagged:
            return film
    pytest.fail("no phantom film whose class map peaks outside the lungs")


def test_lung_outline_and_line_on_an_uploaded_film(page, zoo, tmp_path):
    """The lung fields switched on: the dashed outline on every map of an uploaded film, and the
    plain line under the class map, which peaks outside them."""
    film = tmp_path / "phantom-film-3c9e.png"
    shutil.copy(_film_whose_class_map_peaks_outside_the_lungs(zoo), film)
    _idle(page)
    _switch_to_upload(page)
    _upload(page, film)
    _shows(page, f"{film.name}: 256 x 256 px as given")
    page.get_by_text("Mechanisms: gate, class map, Grad-CAM", exact=True).click(
        timeout=RUN_TIMEOUT_MS
    )
    _idle(page)
    row = ["mech-spatial", "mech-class", "mech-gradcam"]
    # the class map's peak: its circle, the one trace before any outline
    expect(page.locator(".st-key-mech-class .scatterlayer .trace")).to_have_count(
        1, timeout=RUN_TIMEOUT_MS
    )
    marks = {}
    for key in row:  # an upload has no truth: no outline yet, only the circle on the map's peak
        expect(page.locator(f".st-key-{key} .heatmaplayer")).to_be_attached(timeout=RUN_TIMEOUT_MS)
        marks[key] = page.locator(f".st-key-{key} .scatterlayer .trace").count()
        assert marks[key] <= 1
    sidebar = page.locator('[data-testid="stSidebar"]')
    toggle = sidebar.get_by_text("Show lung fields", exact=True)
    toggle.click(timeout=RUN_TIMEOUT_MS)  # off for phantom models
    _shows(page, "may be reading something other than the disease")
    _shows(page, "The dashed pale-blue outline is the film's lung fields")
    _idle(page)
    for key in row:  # the lung outline on every map, beside its peak's circle
        expect(page.locator(f".st-key-{key} .scatterlayer .trace").nth(marks[key])).to_be_attached(
            timeout=RUN_TIMEOUT_MS
        )
    line = (
        page.locator(".st-key-mech-class")
        .locator("xpath=..")
        .get_by_text("may be reading something other than the disease")
    )
    assert line.count() >= 1
    _assert_side_by_side(page, row)
    _assert_no_exception(page)
    _shot(page, tmp_path, "explore_lungs")
