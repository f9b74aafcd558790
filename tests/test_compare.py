"""`compare`: the paper-style report reads only run files and prints exactly their numbers.

Two kinds of runs: real ones (fresh checkpoints evaluated on a tiny ChestX-ray14-layout folder) and
hand-made ones (predictions with a known effect, metrics.json from `core.metrics`, study.json with
chosen figures), so that the statistics (DeLong, Holm, paired bootstrap) and the study's words are
checked against values computed here. (A really computed study.json: tests/test_study.py.)
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxr_attention.core.errors import RunError
from cxr_attention.core.metrics import delong_test, holm_adjust, summarize_predictions
from cxr_attention.core.report import compare_runs
from cxr_attention.core.report.words import attention_effect
from cxr_attention.core.runs import write_json
from tests.test_evaluation import make_dataset, make_run

LABELS = ("Atelectasis", "Effusion", "Emphysema", "Nodule")


class ExternalResources(HTMLParser):
    """Collects every tag attribute that would make a browser fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.found.append((tag, value))


def fake_run(
    folder: Path,
    backbone: str,
    attention: bool,
    scores: np.ndarray,
    truth: np.ndarray,
    patients: np.ndarray,
    source: str = "phantom",
    kind: str | None = None,
) -> Path:
    """A run folder with predictions.csv and metrics.json only (what compare reads); `kind` is
    recorded in metrics.json's model entry when given (else an attention run is the spatial gate)."""
    folder.mkdir(parents=True)
    frame = pd.DataFrame(
        {
            "image_id": [f"{i:05d}.png" for i in range(len(truth))],
            "patient_id": patients,
            "sex": np.where(patients % 2, "M", "F"),
            "age": 50.0,
            "view": "PA",
            "split": "test",
        }
    )
    for k, label in enumerate(LABELS):
        frame[f"y_true_{label}"] = truth[:, k]
    for k, label in enumerate(LABELS):
        frame[f"y_score_{label}"] = scores[:, k]
    frame.to_csv(folder / "predictions.csv", index=False)
    metrics = summarize_predictions(frame, LABELS, None, n_resamples=200, seed=0)
    metrics |= {
        "run": folder.name,
        "data": {"source": source, "root": "/data", "fingerprint": "abc"},
        "model": {
            "backbone": backbone,
            "attention": attention,
            "attention_stages": [-1] if attention else [],
            "image_size": 64,
        },
    }
    if kind is not None:
        metrics["model"]["attention_kind"] = kind
    write_json(folder / "metrics.json", metrics)
    return folder


@pytest.fixture(scope="module")
def effect(tmp_path_factory):
    """Baseline and attention runs of MobileNetV2: attention separates Effusion far better."""
    rng = np.random.default_rng(1)
    n = 400
    patients = np.repeat(np.arange(200), 2)
    truth = (rng.random((n, len(LABELS))) < 0.3).astype(int)
    noise = rng.standard_normal((n, len(LABELS)))
    base = 0.6 * truth + noise
    att = base.copy()
    att[:, 1] = 2.5 * truth[:, 1] + noise[:, 1]  # Effusion: a large, real gain
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    root = tmp_path_factory.mktemp("sweep")
    b = fake_run(root / "mobilenetv2_100", "mobilenetv2_100", False, sigmoid(base), truth, patients)
    a = fake_run(
        root / "mobilenetv2_100+attention", "mobilenetv2_100", True, sigmoid(att), truth, patients
    )
    paths = compare_runs([b, a], root / "report", n_resamples=200)
    return {"base": b, "att": a, "truth": truth, "base_s": base, "att_s": att, "paths": paths}


def test_delong_and_holm_match_a_direct_computation(effect):
    report = json.loads(effect["paths"].json.read_text())
    (pair,) = report["pairs"]
    assert (
        pair["baseline"] == "mobilenetv2_100" and pair["attention"] == "mobilenetv2_100+attention"
    )
    tests = [
        delong_test(effect["truth"][:, k], effect["att_s"][:, k], effect["base_s"][:, k])
        for k in range(len(LABELS))
    ]
    holm = holm_adjust([t.p_value for t in tests])
    for k, label in enumerate(LABELS):
        row = pair["per_class"][label]
        assert row["difference"] == pytest.approx(tests[k].difference)
        assert row["p"] == pytest.approx(tests[k].p_value)
        assert row["p_holm"] == pytest.approx(holm[k])
        assert row["ci"] == pytest.approx(list(tests[k].ci))
    effusion = pair["per_class"]["Effusion"]
    assert effusion["difference"] > 0.1 and effusion["p_holm"] < 0.001 and effusion["ci"][0] > 0
    # unchanged classes: identical scores, no difference, p = 1
    assert pair["per_class"]["Nodule"]["difference"] == 0 and pair["per_class"]["Nodule"]["p"] == 1
    micro = pair["overall"]["micro"]
    lo, hi = micro["ci"]
    assert lo < micro["difference"] < hi and lo > 0  # paired bootstrap by patient: a real gain


def test_report_prints_the_numbers_of_metrics_json(effect):
    md = effect["paths"].markdown.read_text()
    for run in ("base", "att"):
        metrics = json.loads((effect[run] / "metrics.json").read_text())
        lo, hi = metrics["micro_auc_ci"]
        assert f"{metrics['micro_auc']:.3f} [{lo:.3f}, {hi:.3f}]" in md
        for label in LABELS:
            entry = metrics["per_class"][label]
            lo, hi = entry["auc_ci"]
            assert f"| {label} |" in md and f"{entry['auc']:.3f} [{lo:.3f}, {hi:.3f}]" in md
        mean_sens90 = np.mean([metrics["per_class"][lb]["sens_at_spec90"] for lb in LABELS])
        assert f"| {metrics['run']} | " in md and f"{mean_sens90:.3f}" in md
    # the paper's published micro-AUCs for MobileNetV2 beside ours, and its largest gains
    assert "| MobileNetV2 | 0.818 | 0.826 | +0.008 |" in md
    assert re.search(r"\| Effusion \|.*\| \+0\.04 \|", md)
    assert "Synthetic data" in md and "NOT ChestX-ray14" in md


def test_report_says_the_attention_effect_in_plain_words(effect):
    md = effect["paths"].markdown.read_text()
    (pair,) = json.loads(effect["paths"].json.read_text())["pairs"]
    macro = pair["overall"]["macro"]
    assert (
        f"On 400 test films, MobileNetV2 + spatial gate (CBAM, the paper's) reaches macro AUC "
        f"{macro['auc_attention']:.3f} against {macro['auc_baseline']:.3f} for its baseline" in md
    )
    # only Effusion really differs; the sentence names it and nothing else
    assert "better than the baseline for Effusion;" in md and "worse than the baseline" not in md
    assert "not tuned to make any model win" in md  # phantom runs: what the phantom shows
    # the note claims nothing about maps that no figure shows
    assert "Grad-CAM of either model" not in md and "cxr-attention study" in md


def test_attention_effect_sentence_from_the_paired_tests():
    nan = float("nan")
    same = attention_effect("X", 10, 0.8, 0.8, [("A", 0.01, 0.4), ("B", nan, nan)])
    assert "no significant difference for A (p = 0.40)" in same and "(+0.000)" in same
    two = attention_effect("X", 10, 0.8, 0.8, [("A", 0.01, 0.4), ("B", 0.02, 0.3)])
    assert "None of the 2 labels differs significantly" in two
    mixed = attention_effect("X", 10, 0.9, 0.8, [("A", 0.1, 0.01), ("B", -0.1, 0.02)])
    assert "better than the baseline for A and worse than the baseline for B" in mixed
    assert "(+0.100)" in mixed
    untestable = attention_effect("X", 10, 0.9, 0.8, [("A", nan, nan)])
    assert "No label has enough positive and negative films" in untestable


def test_html_is_self_contained_with_roc_plots(effect):
    html = effect["paths"].html.read_text()
    tags = ExternalResources()
    tags.feed(html)
    assert tags.found == []  # nothing fetched: no script src, no stylesheet link, no image url
    assert tags.scripts >= 2 and html.count("plotly.js v") == 1  # the library inlined once
    # one ROC figure per class plus the pooled (micro) one
    assert html.count('class="plotly-graph-div"') == len(LABELS) + 1
    metrics = json.loads((effect["att"] / "metrics.json").read_text())
    assert f"{metrics['macro_auc']:.3f}" in html


def test_localization_table_with_control_and_published_row(tmp_path, effect):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("predictions.csv", "metrics.json"):
        (run / name).write_bytes((effect["att"] / name).read_bytes())
    entry = {"n_boxes": 10, "pointing_game": 0.8, "energy_in_box": 0.4}
    entry["iobb_acc"] = {"0.1": 0.7, "0.25": 0.5, "0.5": 0.2}
    loc = {"run": "run", "method": "attention", "split": "test", "n_boxes": 10, "n_images": 8}
    loc |= {"source": "phantom", "map_stage": "stage4", "overall": entry}
    loc["per_class"] = {"Effusion": entry}
    write_json(run / "localization.json", loc)
    control = {**loc, "method": "random", "map_stage": "random"}
    control["overall"] = control["per_class"]["Effusion"] = {**entry, "pointing_game": 0.1}
    write_json(run / "localization_random.json", control)
    paths = compare_runs([run], tmp_path / "report", n_resamples=0)
    md = paths.markdown.read_text()
    assert "Pointing game" in md and "| run | attention | stage4 | 10 | 0.800 | 0.800 |" in md
    assert "random control (run)" in md and "| 0.100 |" in md
    assert "Wang et al. 2017" in md and "0.712" in md  # their Effusion IoBB at T = 0.1
    assert "no baseline" in md  # an attention run alone is reported unpaired


def fake_map(method, stage, own, pointing, control, discordant, p, drop=0.0, random_drop=0.0):
    """One study.json map entry with chosen figures (400 truth units)."""
    summary = {"n_boxes": 400, "iobb_acc": {"0.1": 0.5, "0.25": 0.3, "0.5": 0.1}}
    return {
        "method": method,
        "stage": stage,
        "own": own,
        "map_size": [8, 8],
        "localization": {"n_boxes": 400, "overall": {**summary, "pointing_game": pointing,
                                                     "energy_in_box": 0.2}},
        "random": {"n_boxes": 400, "overall": {**summary, "pointing_game": control,
                                               "energy_in_box": 0.03}},
        "pointing_vs_random": {"map_only": discordant[0], "random_only": discordant[1], "p": p},
        "faithfulness": {"n": 400, "mean_drop": drop, "random_mean_drop": random_drop,
                         "map_larger": 300 if drop > random_drop else 150,
                         "random_larger": 90 if drop > random_drop else 160,
                         "p": 1e-20 if drop > random_drop else 0.6},
    }  # fmt: skip


def fake_study(run: Path, kind: str | None, maps: dict, attention_parameters: int) -> None:
    own = [k for k, m in maps.items() if m["own"]]
    write_json(
        run / "study.json",
        {
            "run": run.name,
            "backbone": "mobilenetv2_100",
            "kind": kind,
            "class_specific": kind == "class",
            "data": {"truth": "masks", "n_truth": 400},
            "own_map": own[-1] if own else None,  # the deepest gate, as the study writes it
            "maps": maps,
            "cost": {"parameters": 2_000_000 + attention_parameters,
                     "attention_parameters": attention_parameters, "latency_ms": 11.0,
                     "baseline_latency_ms": 10.0, "latency_overhead": 0.1},
        },
    )  # fmt: skip


@pytest.fixture(scope="module")
def kinds(tmp_path_factory, effect):
    """A baseline, the spatial gate and a class-specific head of MobileNetV2, each with a
    hand-made study.json: the class map points into the lesions, the gate below chance."""
    truth = effect["truth"]
    patients = np.repeat(np.arange(200), 2)
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    root = tmp_path_factory.mktemp("kinds")
    runs = {}
    for name, kind, scores in (
        ("mobilenetv2_100", None, effect["base_s"]),
        ("mobilenetv2_100+attention", "spatial", effect["att_s"]),
        ("mobilenetv2_100+class", "class", effect["att_s"] + 0.5 * truth),
    ):
        runs[kind] = fake_run(root / name, "mobilenetv2_100", kind is not None, sigmoid(scores),
                              truth, patients, kind=kind)  # fmt: skip
    gradcam = "gradcam:stage4"
    fake_study(runs[None], None, {gradcam: fake_map("gradcam", "stage4", False, 0.12, 0.05,
                                                    (40, 12), 1e-4)}, 0)  # fmt: skip
    fake_study(runs["spatial"], "spatial", {
        "attention:stage3": fake_map("attention", "stage3", True, 0.05, 0.05, (10, 10), 1.0),
        "attention:stage4": fake_map("attention", "stage4", True, 0.0, 0.05, (0, 20), 2e-6,
                                     0.01, 0.012),
        gradcam: fake_map("gradcam", "stage4", False, 0.01, 0.05, (2, 18), 4e-4),
    }, 200)  # fmt: skip
    fake_study(runs["class"], "class", {
        "attention:class": fake_map("attention", "class", True, 0.62, 0.05, (230, 2), 1e-60,
                                    0.21, 0.04),
        gradcam: fake_map("gradcam", "stage4", False, 0.30, 0.05, (110, 10), 1e-20),
    }, 17_934)  # fmt: skip
    paths = compare_runs(list(runs.values()), root / "report", n_resamples=100)
    return {"runs": runs, "paths": paths}


def test_each_attention_kind_pairs_with_its_backbones_baseline(kinds):
    report = json.loads(kinds["paths"].json.read_text())
    pairs = [(p["kind"], p["baseline"], p["attention"]) for p in report["pairs"]]
    assert pairs == [
        ("spatial", "mobilenetv2_100", "mobilenetv2_100+attention"),
        ("class", "mobilenetv2_100", "mobilenetv2_100+class"),
    ]
    md = kinds["paths"].markdown.read_text()
    assert "**MobileNetV2 + class-specific attention (CSRA) minus its baseline" in md
    assert "**MobileNetV2 + spatial gate (CBAM, the paper's) minus its baseline" in md
    assert "On 400 test films, MobileNetV2 + class-specific attention (CSRA) reaches" in md
    runs = report["sections"]["runs"]["tables"]["runs"]["rows"]
    assert [row[2] for row in runs] == [
        "no",
        "spatial gate (CBAM, the paper's), stages -1",
        "class-specific attention (CSRA)",
    ]
    # the paper's table compares the paper's mechanism: the spatial gate's micro-AUC
    spatial = json.loads((kinds["runs"]["spatial"] / "metrics.json").read_text())
    paper = report["sections"]["paper"]["tables"]["paper"]["rows"][0]
    assert paper[5]["value"] == pytest.approx(spatial["micro_auc"])


def test_study_table_and_words_come_from_the_figures(kinds):
    md = kinds["paths"].markdown.read_text()
    report = json.loads(kinds["paths"].json.read_text())
    table = report["sections"]["study"]["tables"]["study"]
    rows = {row[1]: row for row in table["rows"]}
    assert list(rows) == ["baseline", "spatial gate (CBAM, the paper's)", "class-specific attention (CSRA)"]  # fmt: skip
    csra = rows["class-specific attention (CSRA)"]
    assert csra[5] == {"value": 0.62, "control": 0.05}  # own map: pointing (random)
    assert csra[8] == {"value": 0.30, "control": 0.05}  # Grad-CAM: pointing (random)
    assert csra[11] == {"value": 0.21, "control": 0.04}  # own map: drop (random region)
    assert csra[13] == "17,934 (0.89 %) of 2,017,934" and csra[14] == "+10 % (11.0 ms)"
    (pair,) = [p for p in report["pairs"] if p["kind"] == "class"]
    assert csra[3]["value"] == pytest.approx(pair["overall"]["macro"]["difference"])
    better = sum(r["p_holm"] < 0.05 and r["difference"] > 0 for r in pair["per_class"].values())
    assert csra[4].startswith(f"{better} / ")
    assert rows["baseline"][5] is None and rows["baseline"][3] is None
    assert "| MobileNetV2 | class-specific attention (CSRA) |" in md and "| 0.620 (0.050) |" in md
    # the words: each verdict follows its own figures and test, nothing is fixed in advance
    assert (
        "MobileNetV2 + class-specific attention (CSRA): its own map points into the lesion 0.62 "
        "of the time, 12.4x the random control (0.05): above chance." in md
    )
    assert (
        "lowers that finding's probability by 0.210 on average (0.040 for the random region)" in md
    )
    assert (
        "MobileNetV2 + spatial gate (CBAM, the paper's): its own map (stage4) points into the "
        "lesion 0.00 of the time, 0.0x the random control (0.05): below chance. Its other gate: "
        "stage3 0.05, at chance." in md
    )
    assert "(0.012 for the random region): no more than a random region" in md
    assert "MobileNetV2 0.12, 2.4x (above chance)" in md
    assert "MobileNetV2 + spatial gate (CBAM, the paper's) 0.01, 0.2x (below chance)" in md
    assert "Own attention maps that localize (above chance): MobileNetV2 + class-specific" in md
    assert "Own attention maps at or below chance: MobileNetV2 + spatial gate" in md
    assert "How the mechanisms differ" in md
    assert 'id="study"' in kinds["paths"].html.read_text()


def test_real_runs_end_to_end_and_cli(tmp_path, capsys):
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.train.cli import main

    data = make_dataset(tmp_path / "data", n_patients=12, test_patients=6)
    sweep = tmp_path / "sweep"
    for attention in (False, True):
        name = "mobilenetv2_100+attention" if attention else "mobilenetv2_100"
        run = make_run(sweep / name, data, attention=attention, seed=int(attention))
        evaluate_run(run, n_resamples=20, progress=False, num_workers=0)
    # a parent folder stands for its runs
    assert (
        main(["compare", str(sweep), "--out", str(tmp_path / "report"), "--n-resamples", "20"]) == 0
    )
    assert "report.html" in capsys.readouterr().out
    md = (tmp_path / "report" / "report.md").read_text()
    report = json.loads((tmp_path / "report" / "comparison.json").read_text())
    assert "NIH ChestX-ray14, split: test" in md and "Synthetic data" not in md
    for name in ("mobilenetv2_100", "mobilenetv2_100+attention"):
        metrics = json.loads((sweep / name / "metrics.json").read_text())
        assert f"{metrics['macro_auc']:.3f} [" in md
    (pair,) = report["pairs"]
    base = json.loads((sweep / "mobilenetv2_100" / "metrics.json").read_text())
    att = json.loads((sweep / "mobilenetv2_100+attention" / "metrics.json").read_text())
    assert pair["overall"]["micro"]["difference"] == pytest.approx(
        att["micro_auc"] - base["micro_auc"]
    )

    # a run that was never evaluated: one line that says what to do
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "checkpoint.pt").write_bytes(b"")
    assert main(["compare", str(bare), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cxr-attention evaluate" in err[0]
    with pytest.raises(RunError, match="not found"):
        compare_runs([tmp_path / "nowhere"], tmp_path / "r3")

    # one run folder on its own, no resamples (in-process: the console script's own process is
    # tested once, in tests/test_cli.py)
    assert main(["compare", str(sweep / "mobilenetv2_100"), "--out", str(tmp_path / "r4"),
                 "--n-resamples", "0"]) == 0  # fmt: skip
    assert "report.html" in capsys.readouterr().out
    assert (tmp_path / "r4" / "report.html").is_file()
