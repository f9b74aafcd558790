"""`compare_runs`: the paper-style comparison of evaluated runs, as report.md, report.html and
comparison.json (the same numbers, machine-readable).

Contents: which runs, on which data and split; the paper's micro-AUCs beside ours; per-class AUC per
variant with 95% patient-bootstrap CIs, micro and macro; each attention variant (spatial gate,
cbam, class-specific) minus its backbone's baseline with DeLong p-values (Holm-adjusted across
classes) and CIs; early lift; localization (when runs have localization.json); the mechanism study
with its plain words (when runs have study.json); published macro AUCs; ROC curves (HTML).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from cxr_attention.core.errors import CxrError, RunError
from cxr_attention.core.report.document import ComparisonReport, Section
from cxr_attention.core.report.localization import localization_tables
from cxr_attention.core.report.pairs import (
    PairComparison,
    compare_pair,
    difference_table,
    pair_runs,
)
from cxr_attention.core.report.render_html import render_html
from cxr_attention.core.report.render_md import render_markdown
from cxr_attention.core.report.results import RunResult, describe_data, load_results, union_labels
from cxr_attention.core.report.roc import roc_curves
from cxr_attention.core.report.study import (
    StudyEntry,
    study_lungs_table,
    study_maps_table,
    study_table,
    versus_from_labels,
)
from cxr_attention.core.report.study_words import study_in_words
from cxr_attention.core.report.tables import (
    Estimate,
    auc_table,
    early_lift_tables,
    paper_table,
    published_table,
    run_order,
    runs_table,
)
from cxr_attention.core.report.words import PHANTOM_ATTENTION_NOTE, attention_effect
from cxr_attention.core.runs import write_json

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
REPORT_JSON = "comparison.json"


class ReportPaths(NamedTuple):
    markdown: Path
    html: Path
    json: Path


def build_report(
    run_dirs: Sequence[str | Path], n_resamples: int = 1000, seed: int = 0
) -> ComparisonReport:
    """Read the runs and compute every table (paired tests use `n_resamples` bootstrap draws)."""
    results = run_order(load_results(run_dirs))
    labels = union_labels(results)
    phantom = all(r.source == "phantom" for r in results)
    pairs, notes = [], []
    matched, unpaired = pair_runs(results)
    notes += unpaired
    for base, att in matched:
        try:
            pairs.append(compare_pair(base, att, n_resamples=n_resamples, seed=seed))
        except CxrError as exc:  # a pair on different images is reported, not fatal
            notes.append(f"{att.name} vs {base.name}: not compared ({exc})")
    sections = [
        Section("runs", "Runs", tables=[runs_table(results)]),
        Section(
            "paper",
            "The paper's numbers beside ours",
            "Micro-AUC is the paper's measure; confidence intervals are 95% bootstrap by patient.",
            [paper_table(results, _micro_differences(pairs))],
        ),
        Section("auc", "AUC per class", tables=[auc_table(results, labels)]),
        Section(
            "differences",
            "Each attention variant minus its backbone's baseline",
            _in_words(pairs, phantom),
            [difference_table(p) for p in pairs],
        ),
        Section("early_lift", "Early lift", tables=early_lift_tables(results, labels)),
    ]
    loc = localization_tables(results)
    if loc:
        sections.append(Section("localization", "Localization of findings", tables=loc))
    studied = study_entries(results, pairs)
    # films without lesion outlines (real collections) have no pointing figures: their maps are
    # held to the lung fields alone
    entries = [e for e in studied if all("localization" in m for m in e.study["maps"].values())]
    lungs = study_lungs_table(studied)
    if entries:
        missing = [r.name for r in results if r.study is None]
        text = "\n\n".join(study_in_words(entries))
        if missing:
            text += (
                f"\n\nNot studied (no study.json; run `cxr-attention study`): {', '.join(missing)}."
            )
        sections.append(
            Section(
                "study",
                "The attention study: where each map points, and whether it matters",
                text,
                [study_table(entries), study_maps_table(entries), *filter(None, [lungs])],
            )
        )
    elif lungs is not None:
        sections.append(
            Section(
                "study",
                "The attention study: where each map lies against the lung fields",
                "These films have no lesion outlines: each map is held to the films' lung fields.",
                [lungs],
            )
        )
    sections.append(Section("published", "Published results", tables=[published_table()]))
    return ComparisonReport(
        title="cxr-attention: attention vs baseline",
        data=describe_data(results),
        phantom=phantom,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        runs=results,
        sections=sections,
        pairs=pairs,
        curves=roc_curves(results, labels),
        notes=notes,
    )


def study_entries(
    results: Sequence[RunResult], pairs: Sequence[PairComparison]
) -> list[StudyEntry]:
    """The runs that have study.json, in report order, each with its pair's figures."""
    by_attention = {p.attention.name: p for p in pairs}
    entries = []
    for r in results:
        if r.study is None:
            continue
        pair = by_attention.get(r.name)
        versus = None
        if pair is not None:
            macro = pair.overall["macro"]
            versus = versus_from_labels(
                macro["difference"],
                macro["ci"],
                [
                    (label, row["difference"], row["p_holm"])
                    for label, row in pair.per_class.items()
                ],
            )
        macro_auc = r.metrics.get("macro_auc")
        entries.append(
            StudyEntry(
                r.name,
                r.backbone,
                r.kind,
                float("nan") if macro_auc is None else float(macro_auc),
                r.study,
                versus,
            )
        )
    return entries


def _in_words(pairs: Sequence[PairComparison], phantom: bool) -> str:
    """The differences section's paragraphs: one per pair, and what the phantom shows."""
    if not pairs:
        return "No backbone has both an attention run and a baseline run to pair."
    paragraphs = [
        attention_effect(
            p.variant_title,
            p.n_images,
            p.overall["macro"]["auc_attention"],
            p.overall["macro"]["auc_baseline"],
            [(label, row["difference"], row["p_holm"]) for label, row in p.per_class.items()],
        )
        for p in pairs
    ]
    if phantom:
        paragraphs.append(PHANTOM_ATTENTION_NOTE)
    return "\n\n".join(paragraphs)


def _micro_differences(pairs: Sequence[PairComparison]) -> dict[str, Estimate]:
    """Micro-AUC difference with its paired bootstrap CI, per backbone (the first pair of the
    paper's spatial gate: the paper table's mechanism)."""
    out: dict[str, Estimate] = {}
    for pair in (p for p in pairs if p.kind == "spatial"):
        micro = pair.overall["micro"]
        out.setdefault(pair.backbone, Estimate(micro["difference"], micro["ci"], signed=True))
    return out


def compare_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    n_resamples: int = 1000,
    seed: int = 0,
) -> ReportPaths:
    """Write OUT/report.md, OUT/report.html (self-contained) and OUT/comparison.json."""
    report = build_report(run_dirs, n_resamples=n_resamples, seed=seed)
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create the report folder {out}: {exc.strerror}") from None
    paths = ReportPaths(out / REPORT_MD, out / REPORT_HTML, out / REPORT_JSON)
    _write_text(paths.markdown, render_markdown(report))
    _write_text(paths.html, render_html(report))
    write_json(paths.json, json.loads(json.dumps(report.as_json(), default=_jsonable)))
    return paths


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
