"""The app with both shipped zoos: the phantom's and the one that learnt real paediatric films.

The runs folder holds what `cxr-attention demo` installs: the phantom zoo's class-specific model
and the real-film zoo (assets/zoo-pneumonia) with its shipped evaluation. The films that evaluation
scored are not on this machine (the test points its record at a folder that does not exist, as on
a fresh machine); with ../shared/realdata-pneumonia given to the app, the failure cases show them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cxr_attention.app.settings import DATA_ENV, RUNS_ENV
from cxr_attention.core.study import STUDY
from cxr_attention.core.study.open_blanking import NO_OUTLINES
from cxr_attention.train.zoos.install import install_films_zoo, install_zoo
from cxr_attention.train.zoos.registry import PHANTOM_ZOO, zoo_named

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
REAL = Path(__file__).resolve().parents[2] / "shared" / "realdata-pneumonia"
TIMEOUT = 180
ZOO_DIR = PHANTOM_ZOO.folder
PNEUMONIA = zoo_named("pneumonia")
REAL_TITLE = PNEUMONIA.recipe.title  # "5,216 paediatric films from one centre in Guangzhou"
PHANTOM = "the synthetic phantom"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two-zoos") / "runs"
    (phantom,) = install_zoo(root, ["mobilenetv2_100+class"], ZOO_DIR)
    shutil.copy2(ZOO_DIR / phantom.name / STUDY, phantom / STUDY)  # its study of the test films
    installed = install_films_zoo(root / PNEUMONIA.runs, PNEUMONIA.folder)
    for run in installed:  # the films it scored are elsewhere, as on a fresh machine
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["data"]["root"] = str(root.parent / "not-here")
        (run / "metrics.json").write_text(json.dumps(metrics))
    return root


def open_app(runs: Path, monkeypatch, data: Path | None = None) -> AppTest:
    monkeypatch.setenv(RUNS_ENV, str(runs))
    if data is not None:
        monkeypatch.setenv(DATA_ENV, str(data))
    else:
        monkeypatch.delenv(DATA_ENV, raising=False)
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def real_collection(at: AppTest) -> AppTest:
    picker = at.sidebar.radio(key="sidebar.collection")
    assert picker.options[0] == PHANTOM and any(REAL_TITLE in o for o in picker.options)
    picker.set_value(next(o for o in picker.options if REAL_TITLE in o)).run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += (
        [i.value for i in at.info] + [w.value for w in at.warning] + [e.value for e in at.error]
    )
    return "\n".join(parts)


def film_bytes() -> bytes:
    """A real paediatric film when ../shared is here, else a drawn chest-like picture."""
    films = sorted((REAL / "chest_xray" / "train" / "PNEUMONIA").glob("*.jpeg"))
    if films:
        return films[0].read_bytes()
    image = np.full((224, 224), 40, np.uint8)
    cv2.ellipse(image, (112, 112), (80, 95), 0, 0, 360, 170, -1)
    return cv2.imencode(".png", image)[1].tobytes()


def test_the_sidebar_names_what_the_models_learnt_and_shows_those_alone(runs, monkeypatch):
    at = open_app(runs, monkeypatch)
    # the phantom first: its model alone, and the page says so
    assert at.radio(key="explore.view").value == "mechanisms"
    text = page_text(at)
    assert "Models that learnt **the synthetic phantom**" in text
    # opened on a sample chosen by a rule, and each map says how it does across the test films
    study = json.loads((runs / "mobilenetv2_100+class" / STUDY).read_text())
    per_class = study["maps"]["attention:class"]["localization"]["per_class"]
    label = at.selectbox(key="explore.label").value
    assert "at the median rate of the samples' findings" in text
    share = per_class[label]["pointing_game"]
    assert f"this map's peak lands on the lesion {share:.0%} of the time" in text
    assert not at.toggle(key="explore.lungs").value  # phantom models: no lung outline at first
    at = real_collection(at)
    assert at.toggle(key="explore.lungs").value  # real-film models: the lung fields from the start
    text = page_text(at)
    assert f"Models that learnt **{REAL_TITLE}" in text
    assert "No real film ships with the app" in text
    assert at.selectbox(key="explore.label").options == ["Pneumonia"]
    # upload a film: the real models' probability of their one label, gate and class map
    at.radio(key="explore.source").set_value("upload").run()
    at.file_uploader(key="explore.upload").set_value(
        ("film.jpeg", film_bytes(), "image/jpeg")
    ).run()
    assert not at.exception and not at.error, at.error
    charts = {el.key for el in at.get("plotly_chart")}
    assert {"mech-spatial", "mech-class", "mech-gradcam"} <= charts  # gate, class map, Grad-CAM
    assert "P(Pneumonia) = " in page_text(at)
    # back to the phantom: the upload is kept, the real models' label is forgotten
    at.sidebar.radio(key="sidebar.collection").set_value(PHANTOM).run()
    assert not at.exception and not at.error
    assert at.radio(key="explore.source").value == "upload"
    assert len(at.selectbox(key="explore.label").options) == 14


def test_compare_page_for_one_label_models_with_blanking_and_no_lesion_figure(runs, monkeypatch):
    at = real_collection(open_app(runs, monkeypatch))
    at.switch_page("views/compare.py").run()
    assert not at.exception and not at.error, at.error
    auc = at.dataframe[0].value
    assert len(auc) == 1 and "Pneumonia" in str(auc.index[0]) + str(auc.iloc[0].to_dict())
    assert at.selectbox(key="compare.label").options == ["Pneumonia"]
    keys = {el.key for el in at.get("plotly_chart")}
    assert {"roc", "calibration"} <= keys
    text = page_text(at)
    assert NO_OUTLINES.capitalize() in text
    blanking = next(d.value for d in at.dataframe if "drop, random region" in d.value.columns)
    assert len(blanking) >= 3  # every model's maps, own and Grad-CAM
    assert not any("pointing" in str(c).lower() for c in blanking.columns)


def test_the_localization_page_says_there_are_no_outlines(runs, monkeypatch):
    """No lesion is outlined on these films; where the zoo's studies held every map to the lung
    fields (study.json, maps.<key>.lungs), the page shows those rates, one chart per backbone."""
    at = real_collection(open_app(runs, monkeypatch))
    at.switch_page("views/localization.py").run()
    assert not at.exception and not at.error
    assert NO_OUTLINES.capitalize() in page_text(at)
    studied = {}  # what the shipped zoo studied: installed with it, shown by the page
    for run in (r for r in PNEUMONIA.folder.iterdir() if (r / "checkpoint.pt").is_file()):
        study = json.loads((run / STUDY).read_text()) if (run / STUDY).is_file() else {}
        if any("lungs" in m for m in (study.get("maps") or {}).values()):
            studied[run.name] = study["backbone"]
    charts = {el.key for el in at.get("plotly_chart")}
    assert charts == {f"loc-lungs-{backbone}" for backbone in set(studied.values())}


def test_failure_cases_say_how_to_point_the_app_at_the_films(runs, monkeypatch):
    at = real_collection(open_app(runs, monkeypatch))
    at.switch_page("views/failures.py").run()
    assert not at.exception and not at.error
    text = page_text(at)
    assert "cxr-attention app --runs" in text and "--data DIR" in text and REAL_TITLE in text


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata-pneumonia is absent")
def test_failure_cases_show_the_films_from_the_folder_given_to_the_app(runs, monkeypatch):
    at = real_collection(open_app(runs, monkeypatch, data=REAL))
    at.switch_page("views/failures.py").run()
    assert not at.exception and not at.error
    assert any(b.key.startswith("open-") for b in at.button if b.key)  # a gallery of films
    assert "not on this machine" not in page_text(at)


def test_the_timeline_of_real_films_needs_the_films_and_says_how_to_give_them(runs, monkeypatch):
    at = real_collection(open_app(runs, monkeypatch))
    at.switch_page("views/timeline.py").run()
    assert not at.exception and not at.error
    text = page_text(at)
    assert "The films of this timeline are not shown" in text and "--data DIR" in text


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realdata-pneumonia is absent")
def test_the_timeline_of_real_films_shows_maps_without_an_outline(runs, monkeypatch):
    at = real_collection(open_app(runs, monkeypatch, data=REAL))
    at.switch_page("views/timeline.py").run()
    assert not at.exception and not at.error
    assert NO_OUTLINES.capitalize() in page_text(at)
    assert "timeline-film" in {el.key for el in at.get("plotly_chart")}
