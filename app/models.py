"""Streamlit caching around the registry and the models.

`st.cache_resource` holds one `LoadedModel` per checkpoint for every session (models never reload on
a click; each carries its own lock). `st.cache_data` keeps recent scores and maps per image digest,
in memory only, so toggling a switch back does not recompute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from cxr_attention.app import inference
from cxr_attention.app.comparison import Evaluated
from cxr_attention.app.lung_fields import FilmFields, find_fields
from cxr_attention.app.lung_rates import LungRate, localize_rates, study_rates
from cxr_attention.app.registry import ModelEntry, Registry, runs_signature, scan_runs
from cxr_attention.core.errors import CxrError
from cxr_attention.core.explain.lung_run import LOCALIZATION_LUNGS
from cxr_attention.core.runs import LOCALIZATION, METRICS, PREDICTIONS, RunFolder
from cxr_attention.core.study import STUDY
from cxr_attention.core.training.timeline import TIMELINE, Timeline, read_timeline


@st.cache_data(show_spinner="Reading the runs folder…", max_entries=4)
def _registry(root: str, signature: tuple) -> Registry:
    return scan_runs(root)


def registry(root: Path) -> Registry:
    """The registry of `root`, rescanned when a checkpoint appears, changes or goes."""
    return _registry(str(root), runs_signature(root))


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def load_model(checkpoint: str, mtime: float) -> inference.LoadedModel:
    """The model of one checkpoint, shared across sessions (`mtime` refreshes a retrained file)."""
    return inference.load_model(checkpoint)


@st.cache_data(show_spinner=False, max_entries=64)
def analysis(
    checkpoint: str,
    mtime: float,
    digest: str,
    label: str,
    method: str,
    ablate: bool,
    _view: np.ndarray,
) -> inference.Analysis:
    """Probabilities and one label's map for the image `digest` (its model view is `_view`)."""
    return inference.analyse_view(load_model(checkpoint, mtime), _view, label, method, ablate)


@st.cache_data(show_spinner="Finding the lung fields…", max_entries=32)
def film_fields(digest: str, _radiograph) -> FilmFields:
    """The lung fields of the film `digest` (its decoded `_radiograph`), found once per film by
    the shipped lung model and shared by every map, page and session."""
    return find_fields(_radiograph)


@st.cache_data(show_spinner=False, max_entries=16)
def _timeline(run: str, mtime: float) -> Timeline | None:
    return read_timeline(run)


def timeline(entry: ModelEntry) -> Timeline | None:
    """A run's attention timeline (re-read when an epoch is added)."""
    folder = entry.run.path / TIMELINE
    newest = max((_mtime(p) for p in folder.glob("*.npz")), default=0.0)
    return _timeline(str(entry.run.path), newest)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


MADE_BY = {LOCALIZATION: "localize", STUDY: "study", LOCALIZATION_LUNGS: "localize --truth lungs"}


@st.cache_data(show_spinner=False, max_entries=64)
def _run_file(run: str, filename: str, mtime: float):
    folder = RunFolder(Path(run))
    if filename == PREDICTIONS:
        return folder.predictions()
    return folder.read_json(filename, MADE_BY.get(filename, "evaluate"))


def run_file(entry: ModelEntry, filename: str):
    """metrics.json, localization.json, study.json, localization_lungs.json (dict) or
    predictions.csv (DataFrame) of a run, cached until the file changes; `RunError` when it is
    missing or unreadable."""
    return _run_file(str(entry.run.path), filename, _mtime(entry.run.path / filename))


def lung_rates(entry: ModelEntry) -> tuple[list[LungRate], str]:
    """The run's in-lung figures (study.json's maps, then localization_lungs.json's map) and one
    line when a file that is there cannot be read ("" otherwise)."""
    rates, problems = [], []
    for filename, read in ((STUDY, study_rates), (LOCALIZATION_LUNGS, localize_rates)):
        if not entry.has(filename):
            continue
        try:
            rates += read(entry.name, run_file(entry, filename))
        except CxrError as exc:
            problems.append(str(exc))
    return rates, "; ".join(problems)


def study(entry: ModelEntry) -> dict | None:
    """The run's study.json, None when it has none or it cannot be read."""
    if not entry.has(STUDY):
        return None
    try:
        return run_file(entry, STUDY)
    except CxrError:
        return None


def evaluated(entries: list[ModelEntry]) -> tuple[list[Evaluated], list[str]]:
    """The runs whose metrics and predictions read cleanly, and one line per run that failed."""
    good, problems = [], []
    for entry in entries:
        try:
            good.append(Evaluated(entry, run_file(entry, METRICS), run_file(entry, PREDICTIONS)))
        except CxrError as exc:
            problems.append(f"{entry.name}: {exc}")
    return good, problems


@st.cache_resource(show_spinner="Reading the dataset index…", max_entries=4)
def dataset(root: str, options):
    """The dataset a run was trained on (`core.data.sources.open_dataset` with the run's
    `ReadOptions`), shared by sessions; `CxrError` when the folder is gone or unreadable."""
    import warnings

    from cxr_attention.core.data.sources import open_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a partial download is reported by fit, not here
        return open_dataset(root, options)
