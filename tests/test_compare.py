"""`compare`: the paper-style report reads only run files and prints exactly their numbers.

Two kinds of runs: real ones (fresh checkpoints evaluated on a tiny ChestX-ray14-layout folder) and
hand-made ones (predictions with a known effect, metrics.json from `core.metrics`), so that the
statistics (DeLong, Holm, paired bootstrap) are checked against values computed here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import RunError
from core.metrics import delong_test, holm_adjust, summarize_predictions
from core.report import compare_runs
from core.report.words import attention_effect
from core.runs import write_json
from tests.test_evaluation import REPO, make_dataset, make_run

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
) -> Path:
    """A run folder with predictions.csv and metrics.json only (what compare reads)."""
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
        f"On 400 test films, MobileNetV2 with attention reaches macro AUC "
        f"{macro['auc_attention']:.3f} against {macro['auc_baseline']:.3f} without" in md
    )
    # only Effusion really differs; the sentence names it and nothing else
    assert "better with attention for Effusion;" in md and "worse with attention" not in md
    assert "not tuned to make either model win" in md  # phantom runs: what the phantom shows


def test_attention_effect_sentence_from_the_paired_tests():
    nan = float("nan")
    same = attention_effect("X", 10, 0.8, 0.8, [("A", 0.01, 0.4), ("B", nan, nan)])
    assert "None of the 1 labels differs significantly" in same and "(+0.000)" in same
    mixed = attention_effect("X", 10, 0.9, 0.8, [("A", 0.1, 0.01), ("B", -0.1, 0.02)])
    assert "better with attention for A and worse with attention for B" in mixed
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


def test_real_runs_end_to_end_and_cli(tmp_path, capsys):
    from core.evaluation import evaluate_run
    from train.cli import main

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

    done = subprocess.run(
        [sys.executable, "-m", "train.cli", "compare", str(sweep / "mobilenetv2_100"), "--out",
         str(tmp_path / "r4"), "--n-resamples", "0"],
        capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r4" / "report.html").is_file()
