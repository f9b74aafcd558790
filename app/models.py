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
from cxr_attention.app.registry import ModelEntry, Registry, runs_signature, scan_runs
from cxr_attention.core.errors import CxrError
from cxr_attention.core.runs import LOCALIZATION, METRICS, PREDICTIONS, RunFolder
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


@st.cache_data(show_spinner=False, max_entries=64)
def _run_file(run: str, filename: str, mtime: float):
    folder = RunFolder(Path(run))
    if filename == PREDICTIONS:
        return folder.predictions()
    made_by = "localize" if filename == LOCALIZATION else "evaluate"
    return folder.read_json(filename, made_by)


def run_file(entry: ModelEntry, filename: str):
    """metrics.json / localization.json (dict) or predictions.csv (DataFrame) of a run, cached
    until the file changes; `RunError` when it is missing or unreadable."""
    return _run_file(str(entry.run.path), filename, _mtime(entry.run.path / filename))


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
