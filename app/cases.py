"""Images of a run's dataset: find them, read them with their truth, explain them.

Used by the Failure cases and Localization pages; both need the images that a run was trained and
evaluated on, which are reachable only when the dataset folder recorded in the checkpoint exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from cxr_attention.app import figures, images, models
from cxr_attention.app.columns import (
    analyse,
    colorbar_title,
    effective_method,
    map_heading,
    map_source,
    plain_frame,
)
from cxr_attention.app.inference import view_for
from cxr_attention.app.registry import ModelEntry
from cxr_attention.app.settings import data_folders
from cxr_attention.core.data.sources import recorded_options
from cxr_attention.core.errors import CxrError
from cxr_attention.core.runs import METRICS, PREDICTIONS

NO_FIELDS = "The lung model finds no plausible lung fields on this film: no outline is drawn."


def data_root_for(entry: ModelEntry) -> str:
    """The folder whose films the run's results show: the one `evaluate` scored (metrics.json),
    else the one it was trained on. They differ for a model evaluated on external data, such as
    the demo zoo, trained on one phantom and evaluated on another."""
    if entry.evaluated:
        try:
            root = (models.run_file(entry, METRICS).get("data") or {}).get("root")
        except CxrError:
            root = None
        if root:
            return str(root)
    return entry.data_root


def dataset_for(entry: ModelEntry):
    """(DatasetIndex, "") for the run's data folder, or (None, why not and what to do, one line).

    Where the recorded folder is not on this machine (a zoo trained elsewhere), the folders given
    to `cxr-attention app --data DIR` are tried: one that holds the films the run scored is used.
    """
    root = data_root_for(entry)
    if not root:
        return None, "the checkpoint does not record its data folder"
    options = recorded_options(entry.training.get("data") or {}, entry.labels)
    if Path(root).exists():
        try:
            return models.dataset(root, options), ""
        except CxrError as exc:
            return None, str(exc)
    for folder in data_folders():
        try:
            index = models.dataset(str(folder), options)
        except CxrError:
            continue
        if holds_scored_films(entry, index):
            return index, ""
    return None, (
        f"the films it was evaluated on ({entry.collection}) were at {root}, which is not on this "
        f"machine: start the app with `cxr-attention app --runs {entry.run.path.parent} --data "
        "DIR`, DIR being your copy of that collection"
    )


def holds_scored_films(entry: ModelEntry, index) -> bool:
    """Whether `index` holds the films of the run's predictions.csv (by image id)."""
    try:
        scored = models.run_file(entry, PREDICTIONS)["image_id"].astype(str)
    except CxrError:
        return False
    return bool(len(scored)) and scored.isin(index.items["image_id"].astype(str)).all()


def film_view(index, image_id: str, size: int) -> np.ndarray:
    """One film of the dataset as the model sees it, uint8 (size, size)."""
    from cxr_attention.core.data.preprocess import model_view
    from cxr_attention.core.data.radiograph import load_radiograph

    row = index.items.loc[index.items["image_id"] == image_id]
    if row.empty:
        raise CxrError(f"{image_id} is not in the dataset at {index.root}")
    return model_view(load_radiograph(row.iloc[0]["path"]).pixels, size)


def study_for(index, image_id: str) -> images.StudyImage:
    """One dataset image with its findings, boxes and (phantom) masks as ground truth."""
    row = index.items.loc[index.items["image_id"] == image_id]
    if row.empty:
        raise CxrError(f"{image_id} is not in the dataset at {index.root}")
    row = row.iloc[0]
    boxes = index.boxes[index.boxes["image_id"] == image_id]
    sample = images.Sample(
        file=Path(row["path"]),
        labels=tuple(label for label in index.labels if int(row[label]) == 1),
        boxes=tuple(images.Box(b.label, b.x, b.y, b.w, b.h) for b in boxes.itertuples(index=False)),
        masks=index.mask_paths(image_id),
        source=index.source,
    )
    return images.read_sample(sample)


def thumbnail(index, image_id: str, size: int = 192) -> np.ndarray | None:
    """The model-view thumbnail of one dataset image; None when it cannot be read."""
    path = index.items.loc[index.items["image_id"] == image_id, "path"]
    if path.empty:
        return None
    try:
        return view_for(images.load_radiograph(path.iloc[0]).pixels, size)
    except CxrError:
        return None


def own_method(entry: ModelEntry) -> str:
    """The model's own map: its attention (a gate's map, or a class head's map of the label),
    Grad-CAM for a baseline."""
    return "attention" if entry.attention else "gradcam"


def case_figure(
    entry: ModelEntry, study: images.StudyImage, label: str, method: str, opacity: float = 0.45
) -> go.Figure:
    """The model view with `method`'s map for `label`, ground-truth boxes and mask outlines (a
    baseline asked for "attention" shows Grad-CAM). A model with a lung prior is shown the film as
    it reads it (`RadiographError` when the film has no plausible lung fields)."""
    size = entry.image_size
    used, _ = effective_method(entry, method, False)
    view, result = analyse(entry, study, label, used, False)
    explained = result.explanation
    h, w = study.radiograph.height, study.radiograph.width
    sample = study.sample if plain_frame(entry) else None
    return figures.overlay_figure(
        view,
        explained.heat,
        opacity=opacity,
        boxes=images.boxes_in_view(sample.boxes, h, w, size) if sample else [],
        contours=images.mask_outlines(sample.masks, h, w, size) if sample else [],
        peak=explained.peak,
        title=f"{Path(study.name).stem} · {label}<br><sup>{map_heading(entry, label, explained)}"
        + f" ({map_source(explained)})"
        + (": zero everywhere, no positive evidence" if explained.scale == 0.0 else "")
        + "</sup>",
        colorbar_title=colorbar_title(entry, label, explained),
    )
