"""The lung fields in the app (issues 35 and 36), through `streamlit.testing.v1.AppTest`.

The runs are real-film-like (tests/app_lung_runs.py): phantom films in class folders, so that
nothing but the shipped lung model knows their lungs, models read through the lung prior on two
backbones, and a teaching model of the same backbone and kind without it, each evaluated and
studied by the project's own code. What the pages show is checked against what core computes.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cxr_attention.app.settings import RUNS_ENV
from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.explain import explain
from cxr_attention.core.explain.localization import peak_of
from cxr_attention.core.explain.lung_scores import film_area, flag_line, score_in_lungs
from cxr_attention.core.lungs.segment import segment_lungs
from cxr_attention.core.lungs.shipped import shipped_lung_model
from cxr_attention.core.lungs.views import prior_input, prior_truth
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.study import STUDY
from tests.app_lung_runs import SIZE, TITLE, LungRuns, build_lung_runs
from tests.test_app import MAIN, TIMEOUT, plotly, values

CLASS = "mobilenetv2_100+class"  # reads the lung fields alone (mask)
TEACHING = "mobilenetv2_100+class-whole-film"  # the same, trained without the lung prior
LABEL = "Pneumonia"
ELSEWHERE = "may be reading something other than the disease"


@pytest.fixture(scope="module")
def lung_runs(tmp_path_factory) -> LungRuns:
    # 80 films (14 held out, each evaluated by 5 models) rather than the default 160: the pages
    # show what core computes on whatever films there are, and the flagged film is searched for
    return build_lung_runs(tmp_path_factory.mktemp("lung-app"), n=80)


@pytest.fixture
def app(lung_runs, monkeypatch) -> AppTest:
    monkeypatch.setenv(RUNS_ENV, str(lung_runs.runs))
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, path: Path) -> AppTest:
    at.radio(key="explore.source").set_value("upload").run()
    at.file_uploader(key="explore.upload").set_value((path.name, path.read_bytes(), "image/png"))
    at.run()
    assert not at.exception, at.exception
    return at


def class_map_in_lungs(run: Path, film: Path):
    """By hand with core: what the class model sees of `film`, its class map, the film's lung
    fields and area carried into that view, and the map's score against them."""
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    config = checkpoint.config
    radiograph = load_radiograph(film)
    fields = segment_lungs(radiograph, shipped_lung_model())
    view = prior_input(model_view(radiograph.pixels, SIZE), config, fields)
    explained = explain(checkpoint.model, config_input(view[None], config), LABEL, "attention")
    heat, order = explained.map(0), explained.ranked(0)  # ranked: the head's log-odds
    lungs = prior_truth(fields.in_view(SIZE), config, fields)
    area = prior_truth(film_area(radiograph.height, radiograph.width, SIZE), config, fields)
    return view, heat, lungs, score_in_lungs(heat, lungs, area, order), peak_of(heat, order)


def lung_traces(chart: dict) -> list[dict]:
    return [t for t in chart["data"] if t.get("name") == "lung fields"]


def outline_pixels(traces: list[dict]) -> set[tuple[int, int]]:
    return {
        (int(round(y)), int(round(x)))
        for t in traces
        for x, y in zip(values(t["x"]), values(t["y"]), strict=True)
    }


def text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(parts)


def test_the_registry_keeps_the_model_without_the_lung_prior_apart(lung_runs):
    from cxr_attention.app.registry import scan_runs

    registry = scan_runs(lung_runs.runs)
    prior = registry.best("mobilenetv2_100", "class")
    assert prior.name == CLASS and prior.lung_prior == "mask" and not prior.teaching
    [(with_prior, teaching)] = registry.teaching_pairs()
    assert (with_prior.name, teaching.name) == (CLASS, TEACHING)
    assert teaching.lung_prior == "none" and teaching.teaching
    assert teaching.title == "MobileNetV2 + class attention · without the lung prior"
    assert prior.title == "MobileNetV2 + class attention"
    assert "it sees the whole film" in teaching.prior_words
    assert "reads the lung fields alone" in prior.prior_words
    order = [e.name for e in registry.side_by_side()]
    assert order == [
        "mobilenetv2_100",
        CLASS,
        TEACHING,
        "resnet18",
        "resnet18+attention",
    ]


def test_explore_outlines_the_lungs_and_flags_a_map_that_peaks_outside(app, lung_runs):
    """On by default for real-film models: the outline on every map, in the frame the model sees,
    and under a map that peaks outside the lungs, core's one plain line."""
    assert app.toggle(key="explore.lungs").value  # real films: on from the start
    film = None
    for candidate in lung_runs.films:
        view, heat, lungs, score, peak = class_map_in_lungs(lung_runs.runs / CLASS, candidate)
        if score.flagged:
            film = candidate
            break
    assert film is not None, "no held-out film whose class map peaks outside the lungs"
    upload(app, film)
    assert not app.error, [e.value for e in app.error]
    chart = plotly(app)["mech-class"]
    # the model sees its lung fields alone: the film outside them is black
    shown = values(chart["data"][0]["z"])[..., 0]
    np.testing.assert_array_equal(shown, view)
    np.testing.assert_allclose(values(chart["data"][1]["z"]), heat, atol=1e-5)
    contours, _ = cv2.findContours(
        lungs.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    expected = {(int(p[0][1]), int(p[0][0])) for c in contours for p in c}
    assert outline_pixels(lung_traces(chart)) == expected
    # the white circle on the map's peak, where the head's log-odds peak
    [marker] = [t for t in chart["data"] if t.get("name") == "the map's peak"]
    assert (values(marker["y"])[0], values(marker["x"])[0]) == peak
    line = flag_line(score)
    assert ELSEWHERE in line
    assert f"This map {line}." in [w.value for w in app.warning]
    page = text(app)
    assert "reads the lung fields alone" in page
    assert "The dashed pale-blue outline is the film's lung fields" in page
    # the rule across the held-out films: the study's figure for the class map, beside random
    study = json.loads((lung_runs.runs / CLASS / STUDY).read_text())
    figures = study["maps"]["attention:class"]["lungs"]["per_class"][LABEL]
    assert (
        f"this map's peak lies inside the lungs {figures['map']['peak_inside']:.0%} of the time "
        f"(random map {figures['random']['peak_inside']:.0%})" in page
    )
    # switched off: no outline, no line
    app.toggle(key="explore.lungs").set_value(False).run()
    assert not app.exception
    assert not lung_traces(plotly(app)["mech-class"])
    assert not any(ELSEWHERE in w.value for w in app.warning)


def test_a_film_without_lung_fields_is_said_plainly(app):
    """A flat picture: the lung model refuses it, the page says so instead of drawing nothing, and
    models that read the lung fields alone cannot score it (one line each)."""
    flat = np.full((200, 200), 120, np.uint8)  # square: no padding in the view
    at = app
    at.radio(key="explore.source").set_value("upload").run()
    data = cv2.imencode(".png", flat)[1].tobytes()
    at.file_uploader(key="explore.upload").set_value(("flat.png", data, "image/png")).run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("The lung model finds no plausible lung fields on this film" in w for w in warnings)
    errors = [e.value for e in at.error]
    assert errors and all("\n" not in e and "flat.png" in e for e in errors)
    assert not lung_traces(plotly(at).get("model-view", {"data": []}))


def test_the_same_film_before_the_model_with_and_without_the_lung_prior(app, lung_runs):
    upload(app, lung_runs.films[0])
    app.radio(key="explore.view").set_value("prior").run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    charts = plotly(app)
    assert {"prior-prior", "prior-teaching"} <= set(charts)
    for key in ("prior-prior", "prior-teaching"):
        assert lung_traces(charts[key])  # the outline on both
    # the teaching model sees the whole film, the other its lung fields alone
    teaching_view = values(charts["prior-teaching"]["data"][0]["z"])[..., 0]
    prior_view = values(charts["prior-prior"]["data"][0]["z"])[..., 0]
    pixels = load_radiograph(lung_runs.films[0]).pixels
    np.testing.assert_array_equal(teaching_view, model_view(pixels, SIZE))
    assert (prior_view == 0).sum() > (teaching_view == 0).sum()
    headings = [m.value for m in app.markdown if m.value.startswith("**MobileNetV2")]
    assert headings[:2] == [
        "**MobileNetV2 + class attention**",
        "**MobileNetV2 + class attention · without the lung prior**",
    ]
    page = text(app)
    for run in (CLASS, TEACHING):
        figures = json.loads((lung_runs.runs / run / STUDY).read_text())["maps"]
        rate = figures["attention:class"]["lungs"]["per_class"][LABEL]["map"]["peak_inside"]
        assert f"lies inside the lungs {rate:.0%} of the time" in page
    assert "Same backbone, same attention" in page


def test_compare_shows_in_lung_rates_and_differences_with_their_intervals(app, lung_runs):
    from cxr_attention.app.figures import DIFFERENCE_SPAN
    from cxr_attention.core.metrics import compare_runs_delong
    from cxr_attention.core.runs import RunFolder

    app.switch_page("views/compare.py").run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    charts = plotly(app)
    # the two backbones' in-lung figures, each map beside its random control
    assert {"compare-lungs-mobilenetv2_100", "compare-lungs-resnet18"} <= set(charts)
    frame = next(d.value for d in app.dataframe if "peak inside lungs" in d.value.columns)
    study = json.loads((lung_runs.runs / TEACHING / STUDY).read_text())
    section = study["maps"]["attention:class"]["lungs"]
    row = frame[(frame["model"].str.endswith("without the lung prior"))].iloc[0]
    assert row["peak inside lungs"] == pytest.approx(section["map"]["peak_inside"], abs=1e-3)
    assert row["random: peak inside"] == pytest.approx(section["random"]["peak_inside"], abs=1e-3)
    assert len(frame) == sum(
        "lungs" in m
        for run in lung_runs.runs.iterdir()
        for m in json.loads((run / STUDY).read_text())["maps"].values()
    )
    bars = charts["compare-lungs-mobilenetv2_100"]["data"]
    assert [b["name"] for b in bars] == ["the map", "random map, same films"]
    assert any("Same backbone, same attention" in m.value for m in app.markdown)
    # the difference plot: dots with the DeLong interval as whiskers, never a noise-sized axis
    att = RunFolder(lung_runs.runs / "resnet18+attention").predictions()
    base = RunFolder(lung_runs.runs / "resnet18").predictions()
    delong = compare_runs_delong(att, base, [LABEL])
    dots = charts["delta-resnet18+attention-resnet18"]
    trace = dots["data"][0]
    assert trace["type"] == "scatter"
    d = delong["difference"].to_numpy()
    np.testing.assert_allclose(values(trace["y"]), d)
    np.testing.assert_allclose(
        values(trace["error_y"]["array"]), delong["ci_high"].to_numpy() - d, atol=1e-9
    )
    np.testing.assert_allclose(
        values(trace["error_y"]["arrayminus"]), d - delong["ci_low"].to_numpy(), atol=1e-9
    )
    low, high = dots["layout"]["yaxis"]["range"]
    assert low == -high and high >= max(DIFFERENCE_SPAN, abs(delong["ci_low"].iloc[0]))
    # the teaching model has no baseline without the prior: no difference plot of its own
    assert not any(key.startswith(f"delta-{TEACHING}") for key in charts)


def test_the_real_film_localization_page_is_no_longer_empty(app, lung_runs):
    app.switch_page("views/localization.py").run()
    assert not app.exception and not app.error
    charts = plotly(app)
    assert {"loc-lungs-mobilenetv2_100", "loc-lungs-resnet18"} <= set(charts)
    assert "no map is scored against a lesion here" in text(app)
    study = json.loads((lung_runs.runs / "resnet18+attention" / STUDY).read_text())
    expected = study["maps"]["attention:stage4"]["lungs"]["map"]["mass_inside"]
    app.selectbox(key="localization.lung_metric").set_value("mass_inside").run()
    bars = plotly(app)["loc-lungs-resnet18"]["data"][0]
    shown = dict(zip(bars["y"], values(bars["x"]), strict=True))
    assert shown["+ gate · own gate (stage4)"] == pytest.approx(expected)
    assert TITLE in text(app)
    # a gallery of held-out films, each map against the lung fields
    gallery = {k: v for k, v in plotly(app).items() if k.startswith("lung-gal-")}
    assert gallery and all(lung_traces(chart) for chart in gallery.values())
