"""The app in a real browser: Debian's Chromium driven by Playwright.

Starts `cxr-attention app` on a free localhost port, uploads a PNG and a DICOM, switches attention
off and on, and checks that probabilities and a map appear and that no exception reaches the page.
Screenshots go to tmp_path and are copied to tests/artifacts/ for a person to look at.

Skipped when /usr/bin/chromium is absent, unless CXR_REQUIRE_BROWSER=1 (CI), where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from tests.test_app import dicom_bytes

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
START_TIMEOUT_S = 180
RUN_TIMEOUT_MS = 180_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_browser() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)"
    if os.environ.get("CXR_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " — CXR_REQUIRE_BROWSER=1 requires the browser test to run")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _build_runs(root: Path) -> tuple[Path, Path]:
    """One attention and one baseline MobileNetV2 (128 px, phantom provenance) and two samples."""
    from core.data.chestxray14 import open_dataset
    from core.data.phantom import generate_phantom
    from core.labels import ALL14
    from core.models.attention import SpatialAttention
    from core.models.checkpoint import save_checkpoint
    from core.models.classifier import AttentionClassifier, ModelConfig
    from tests.test_app import _training, _write_samples

    data = root / "phantom"
    generate_phantom(data, n=12, size=256, seed=1, workers=1)
    index = open_dataset(data)
    runs = root / "runs"
    for attention in (True, False):
        torch.manual_seed(0)
        model = AttentionClassifier(
            ModelConfig("mobilenetv2_100", ALL14, attention=attention, image_size=SIZE)
        ).eval()
        for gate in model.modules():
            if isinstance(gate, SpatialAttention):
                torch.nn.init.ones_(gate.bn.weight)  # a non-uniform map from untrained weights
        name = "mobilenetv2_100-att" if attention else "mobilenetv2_100"
        save_checkpoint(
            runs / name / "checkpoint.pt", model, _training(data, index.fingerprint, 0.7)
        )
    _write_samples(index, root / "samples")
    return runs, root / "samples"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[str]:
    """The app served by `cxr-attention app --headless` on a free port; yields its URL."""
    _require_browser()
    root = tmp_path_factory.mktemp("browser")
    runs, samples = _build_runs(root)
    port = _free_port()
    env = {**os.environ, "CXR_ATTENTION_SAMPLES": str(samples)}
    log = open(root / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "train.cli", "app", "--runs", str(runs)]
        + ["--port", str(port), "--headless"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so its children stop with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"the app did not start: {(root / 'server.log').read_text()[-800:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def _settle(page) -> None:
    """Wait until the script has run: data-test-script-state leaves "running" for "notRunning"."""
    app = page.locator('[data-testid="stApp"]')
    # A rerun may take a moment to start after a click or an upload; if it is already over, fine.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_selector(
            '[data-testid="stApp"][data-test-script-state="running"]', timeout=3000
        )
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=RUN_TIMEOUT_MS
    )
    assert app.get_attribute("data-test-script-state") == "notRunning"


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
    _settle(page)


def test_upload_png_and_dicom_switch_attention(served, tmp_path):
    png = tmp_path / "film.png"
    image = np.full((300, 260), 25, np.uint8)
    cv2.ellipse(image, (130, 150), (100, 130), 0, 0, 360, 170, -1)
    cv2.circle(image, (90, 120), 18, 230, -1)
    cv2.imwrite(str(png), image)
    dicom = tmp_path / "chest.dcm"
    dicom.write_bytes(dicom_bytes("DX", side=160))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1500, "height": 2600})
        try:
            page.goto(served, timeout=RUN_TIMEOUT_MS)
            page.wait_for_selector('[data-testid="stApp"]', timeout=RUN_TIMEOUT_MS)
            _settle(page)
            # the default page: a phantom sample with its ground truth, two columns of numbers
            page.get_by_text("Above the validation threshold").first.wait_for()
            assert page.get_by_text("Trained on synthetic phantom radiographs").count() >= 1
            _assert_no_exception(page)
            _shot(page, tmp_path, "explore_sample")

            page.locator('[data-testid="stSidebar"]').get_by_text("Upload", exact=True).click()
            _settle(page)
            _upload(page, png)
            charts = page.locator('[data-testid="stPlotlyChart"]')
            assert charts.count() >= 3  # probabilities, map, model view
            assert page.locator('[data-testid="stPlotlyChart"] .heatmaplayer').count() >= 1
            assert page.get_by_text("Above the validation threshold").count() == 1
            assert page.get_by_text("MobileNetV2 + attention").count() >= 1
            _assert_no_exception(page)
            _shot(page, tmp_path, "explore_png_attention_on")

            page.get_by_text("Attention", exact=True).first.click()
            _settle(page)
            page.get_by_text("MobileNetV2 (baseline)").first.wait_for()
            assert page.get_by_text("showing Grad-CAM").count() >= 1
            assert page.locator('[data-testid="stPlotlyChart"] .heatmaplayer').count() >= 1
            _assert_no_exception(page)
            _shot(page, tmp_path, "explore_png_attention_off")

            _upload(page, dicom)
            page.get_by_text("DICOM metadata").wait_for()
            assert "Doe^Jane" not in page.content()  # identifiers hidden by default
            assert page.get_by_text("Above the validation threshold").count() == 1
            _assert_no_exception(page)
            _shot(page, tmp_path, "explore_dicom")

            bad = tmp_path / "notes.png"
            bad.write_bytes(b"this is not an image")
            _upload(page, bad)
            _shot(page, tmp_path, "explore_bad_upload")
            alert = page.locator('[data-testid="stAlertContentError"]')
            alert.wait_for(timeout=RUN_TIMEOUT_MS)
            assert alert.count() == 1 and "notes.png" in alert.inner_text()
            assert "\n" not in alert.inner_text().strip()
            _assert_no_exception(page)
        finally:
            browser.close()
