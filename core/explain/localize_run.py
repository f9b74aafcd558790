"""`cxr-attention localize RUN`: score a run's maps against the boxes or masks of a split.

Reads RUN/checkpoint.pt and the dataset it was trained on (or `data`), takes the images of `split`
that carry truth (ChestX-ray14 boxes, or the phantom's pixel masks), explains each image's boxed
labels with one method, scores every truth box (pointing game, IoBB accuracy at T = 0.1, 0.25, 0.5,
energy in box; see `localization.py`) and writes RUN/localization.json:

    {"run", "method", "split", "n_boxes", "n_images", "source",
     "per_class": {label: {"n_boxes", "pointing_game", "iobb_acc": {"0.1", "0.25", "0.5"},
                           "energy_in_box"}},
     "overall": {same keys, pooled over all boxes}, "map_stage",
     "maps": what was scored, in words ("class-specific attention (one map per label)",
             "attention gate stage4 (one map for all labels)", "gradcam (stage4)", ...)}

Every label is scored with its own map where the method has one: Grad-CAM and Integrated
Gradients of that label's logit, and a class-specific head's (CSRA) map of that label; a gate's
one map serves every label.

Unless the method is itself "random", the random control is scored on the same boxes and written
beside it as RUN/localization_random.json (same schema), so `compare` can print it next to ours.
With masks, each (image, label) mask counts as one box.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.errors import ConfigError, DatasetError, RadiographError, RunError
from cxr_attention.core.explain.localization import (
    IOBB_THRESHOLDS,
    MAP_THRESHOLD,
    Box,
    MapScore,
    box_mask,
    box_to_view,
    score_boxes,
    score_mask,
    summarize_scores,
)
from cxr_attention.core.explain.methods import explain
from cxr_attention.core.labels import canonical_label
from cxr_attention.core.lungs.views import FilmInput, film_input, lung_model_for
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.runs import LOCALIZATION, RunFolder, write_json

log = logging.getLogger(__name__)

LOCALIZE_METHODS = ("attention", "gradcam", "integrated_gradients", "random")
TRUTHS = ("auto", "boxes", "masks")
CONTROL_FILE = "localization_random.json"
# Methods whose cost is one full attribution per (image, label): never ask them for extra labels.
PER_LABEL_COST = frozenset({"integrated_gradients"})


class NoLesionTruth(DatasetError):
    """A split without boxes or lesion masks for the model's labels (a real collection)."""


@dataclass
class TruthCase:
    """One image with its truth: boxes {label: [Box]} in the image frame, or masks {label: path}."""

    image_id: str
    path: str
    boxes: dict[str, list[Box]] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return sorted(set(self.boxes) | set(self.masks))


def truth_cases(
    index, frame: pd.DataFrame, labels: Sequence[str], truth: str = "auto"
) -> tuple[list[TruthCase], str]:
    """The images of `frame` with truth for any of `labels`, sorted by image id; and the truth kind.

    `truth` "auto" uses the phantom's masks when the folder is a phantom, else the box file.
    """
    if truth not in TRUTHS:
        raise ConfigError(f"unknown truth {truth!r}: choose one of {', '.join(TRUTHS)}")
    kind = truth if truth != "auto" else ("masks" if index.source == "phantom" else "boxes")
    wanted = set(labels)
    paths = dict(zip(frame["image_id"], frame["path"], strict=True))
    cases: dict[str, TruthCase] = {}
    if kind == "boxes":
        boxes = index.boxes[index.boxes["image_id"].isin(paths)]
        for row in boxes.itertuples(index=False):
            label = canonical_label(str(row.label))
            if label not in wanted:
                continue
            case = cases.setdefault(row.image_id, TruthCase(row.image_id, paths[row.image_id]))
            case.boxes.setdefault(label, []).append(Box(row.x, row.y, row.w, row.h))
    else:
        for image_id, path in paths.items():
            masks = {k: v for k, v in index.mask_paths(image_id).items() if k in wanted}
            if masks:
                cases[image_id] = TruthCase(image_id, path, masks=masks)
    return [cases[k] for k in sorted(cases)], kind


def labelled_cases(frame: pd.DataFrame, labels: Sequence[str]) -> list[TruthCase]:
    """The films of `frame` labelled with any of `labels`, sorted by image id, as cases whose
    `masks` name those labels without a file: for collections that have no outlines."""
    labels = list(labels)
    targets = frame[labels].to_numpy()
    cases = [
        TruthCase(
            str(image_id),
            str(path),
            masks={label: None for label, y in zip(labels, row, strict=True) if y},
        )
        for image_id, path, row in zip(frame["image_id"], frame["path"], targets, strict=True)
        if row.any()
    ]
    return sorted(cases, key=lambda case: case.image_id)


def mask_in_view(path: Path, size: int) -> np.ndarray:
    """A binary mask file, passed through the model view: pixels at least half covered.

    A lesion smaller than half a view pixel keeps its most covered pixel, so it is never lost.
    """
    raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if raw is None:
        raise DatasetError(f"cannot read mask {path}: regenerate the phantom")
    coverage = model_view((raw > 0).astype(np.float32), size).astype(np.float32) / 255.0
    mask = coverage >= 0.5
    if not mask.any() and coverage.max() > 0:
        mask = coverage >= coverage.max()
    return mask


def carried_truth(truth: dict[str, Truth], film: FilmInput, size: int) -> dict[str, Truth]:
    """A case's truth carried into the frame its model sees (a cropped view moves it; boxes then
    become masks of the view)."""
    if film.fields is None or film.config.lung_prior == "none":
        return truth
    return {
        label: film.truth(t if isinstance(t, np.ndarray) else box_mask(t, (size, size)))
        for label, t in truth.items()
    }


def usable_cases(
    cases: Sequence[TruthCase], config, lung_model
) -> tuple[list[TruthCase], dict[str, str]]:
    """The cases a model can read: all of them, unless it has a lung prior and the lung model
    finds no plausible lung fields on a film (those are returned apart, with the reason)."""
    if config.lung_prior == "none":
        return list(cases), {}
    kept, dropped = [], {}
    for case in cases:
        try:
            film_input(case.path, config, lung_model)
        except RadiographError as exc:
            dropped[case.image_id] = str(exc)
            continue
        kept.append(case)
    return kept, dropped


def control_sigma(model, stage: str) -> float:
    """Smoothness of the random control: half a cell of the stage being scored.

    Pointing game and energy of a stationary random map do not depend on it, but IoBB does (a
    sharper map detects smaller boxes), so the control matches the scored map's cell size; for
    pixel maps (Integrated Gradients) and the control alone, the final stage's cell.
    """
    reductions = {s.name: s.reduction for s in model.stages}
    return reductions.get(stage, model.stages[-1].reduction) / 2.0


Truth = list[Box] | np.ndarray  # boxes in the model view, or a boolean mask of the view


def truth_in_view(case: TruthCase, geometry: tuple[float, int, int], size: int) -> dict[str, Truth]:
    """A case's truth in the model view: {label: boxes or mask}; masks that vanish are dropped."""
    truth: dict[str, Truth] = {}
    for label in case.labels:
        if label in case.boxes:
            truth[label] = [box_to_view(box, geometry) for box in case.boxes[label]]
        else:
            mask = mask_in_view(case.masks[label], size)
            if mask.any():
                truth[label] = mask
    return truth


def score_truth(
    heatmap: np.ndarray, truth: Truth, map_threshold: float, order: np.ndarray | None = None
) -> list[MapScore]:
    """One score per truth box, or one for a mask; `order` ranks the map's places (its peak)."""
    if isinstance(truth, np.ndarray):
        return [score_mask(heatmap, truth, map_threshold, order=order)]
    return score_boxes(heatmap, truth, map_threshold, order=order)


def score_cases(
    model,
    cases: Sequence[TruthCase],
    method: str | Sequence[str],
    batch_size: int = 16,
    map_threshold: float = MAP_THRESHOLD,
    seed: int = 0,
    device: torch.device | str = "cpu",
    lung_model=None,
    **options,
) -> tuple[dict[str, dict[str, list[MapScore]]], str]:
    """Scores per method and label: {method: {label: [MapScore, ...]}}, and the map stage.

    `method` may be several methods scored on the same loaded images (the method, then the random
    control, whose smoothness follows the first method's stage). `options` go to the first
    method's `explain`. Each image's maps are computed for its truth labels only. `lung_model`
    finds the lung fields of a model with a lung prior (`core.lungs.views`).
    """
    methods = (method,) if isinstance(method, str) else tuple(method)
    size = model.config.image_size
    generator = torch.Generator().manual_seed(int(seed))
    scores: dict[str, dict[str, list[MapScore]]] = {m: {} for m in methods}
    stage = ""
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        loaded = [film_input(case.path, model.config, lung_model) for case in chunk]
        truths = [
            carried_truth(truth_in_view(c, film.geometry, size), film, size)
            for c, film in zip(chunk, loaded, strict=True)
        ]
        x = config_input(np.stack([film.view for film in loaded]), model.config, device)
        for m in methods:
            extra = options if m == methods[0] else {}
            if m == "random":
                extra = {"generator": generator, "sigma": control_sigma(model, stage)}
            if m in PER_LABEL_COST:
                # Cost grows with every label asked for: explain each image for its own labels.
                maps = [
                    explain(model, x[b : b + 1], c.labels, m, **extra) for b, c in enumerate(chunk)
                ]
                pick = [(e, 0) for e in maps]
            else:
                wanted = sorted({label for case in chunk for label in case.labels})
                together = explain(model, x, wanted, m, **extra)
                maps = [together]
                pick = [(together, b) for b in range(len(chunk))]
            if m == methods[0]:
                stage = maps[0].stage
            for (explanation, b), truth in zip(pick, truths, strict=True):
                for label, region in truth.items():
                    heat = explanation.map(label, image=b)
                    order = explanation.ranked(label, image=b)
                    scores[m].setdefault(label, []).extend(
                        score_truth(heat, region, map_threshold, order)
                    )
    return scores, stage


def own_map_method(run: str | Path) -> str:
    """The method that shows a run's own map: "attention" for a model with attention maps,
    "gradcam" for a baseline (read from the checkpoint without building the model)."""
    from cxr_attention.core.models.checkpoint import read_checkpoint_data

    model = read_checkpoint_data(RunFolder(Path(run)).checkpoint)["model"]
    return "attention" if model.get("attention") else "gradcam"


def describe_maps(model, method: str, stage: str) -> str:
    """What a localization scored, in words: whose map, from where, per label or shared."""
    if method == "random":
        return "random control"
    if method != "attention":
        return f"{method} ({stage})"
    if model.class_specific:
        return "class-specific attention (one map per label)"
    return f"attention gate {stage} (one map for all labels)"


def localization_report(
    scores: dict[str, list[MapScore]],
    labels: Sequence[str],
    *,
    run: str,
    method: str,
    split: str,
    n_images: int,
    source: str,
    map_stage: str,
    maps: str | None = None,
) -> dict[str, Any]:
    """The localization.json dict from per-label scores (labels in the model's order); `maps`
    says what was scored (`describe_maps`; default: the method and stage)."""
    per_class = {
        label: summarize_scores(scores[label], IOBB_THRESHOLDS)
        for label in labels
        if label in scores
    }
    pooled = [s for label in per_class for s in scores[label]]
    return {
        "run": run,
        "method": method,
        "split": split,
        "n_boxes": len(pooled),
        "n_images": n_images,
        "source": source,
        "per_class": per_class,
        "overall": summarize_scores(pooled, IOBB_THRESHOLDS),
        "map_stage": map_stage,
        "maps": maps or f"{method} ({map_stage})",
    }


@dataclass(frozen=True)
class OpenedRun:
    """A run ready to have its maps scored: its folder, checkpoint, dataset and device."""

    folder: RunFolder
    checkpoint: Any  # core.models.checkpoint.Checkpoint
    index: Any  # core.data.index.DatasetIndex
    device: torch.device


def open_run_for_maps(
    run: str | Path, data: str | Path | None = None, device: str | None = None
) -> OpenedRun:
    """Open a run's checkpoint and the dataset it was trained on (or `data`)."""
    from cxr_attention.core.evaluation import (
        open_run_dataset,
        pick_device,
        resolve_data_root,
        training_data,
    )

    folder = RunFolder.open(run)
    if not folder.checkpoint.is_file():
        raise RunError(f"{folder.checkpoint} is missing: train the run first (cxr-attention fit)")
    device_t = pick_device(device)
    checkpoint = load_checkpoint(folder.checkpoint, device=device_t)
    trained_on = training_data(checkpoint, folder)
    index = open_run_dataset(resolve_data_root(data, trained_on), checkpoint, trained_on)
    return OpenedRun(folder, checkpoint, index, device_t)


def localize_run(
    run: str | Path,
    data: str | Path | None = None,
    method: str = "gradcam",
    split: str = "test",
    limit: int | None = None,
    stage: str | None = None,
    truth: str = "auto",
    batch_size: int = 16,
    map_threshold: float = MAP_THRESHOLD,
    control: bool = True,
    seed: int = 0,
    device: str | None = None,
    ig_steps: int | None = None,
) -> dict[str, Any]:
    """Score a run's maps and write RUN/localization.json (and the random control beside it).

    Returns the localization.json dict. `stage` picks the attention gate or Grad-CAM stage (default:
    the final one); `limit` scores only the first N images (by image id) that carry truth;
    `ig_steps` is the number of path points of Integrated Gradients (default 32).
    """
    if method not in LOCALIZE_METHODS:
        raise ConfigError(f"unknown method {method!r}: choose one of {', '.join(LOCALIZE_METHODS)}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    if not 0.0 < map_threshold < 1.0:
        raise ConfigError(f"map threshold must lie strictly between 0 and 1, got {map_threshold}")
    opened = open_run_for_maps(run, data, device)
    folder, checkpoint, index, device_t = (
        opened.folder, opened.checkpoint, opened.index, opened.device
    )  # fmt: skip
    model = checkpoint.model
    if method == "attention" and not model.has_attention:
        raise ConfigError(
            f"{folder.name} is a baseline model without attention maps: use --method gradcam"
        )
    frame = index.split(split)
    cases, kind = truth_cases(index, frame, checkpoint.labels, truth)
    if not cases:
        raise NoLesionTruth(
            f"no {kind} for this model's labels among the {len(frame)} {split} images of "
            f"{index.root}: choose another --split (ChestX-ray14's boxes are all in test_list.txt)"
        )
    if limit is not None:
        cases = cases[:limit]
    lung_model = lung_model_for([model.config])
    cases, dropped = usable_cases(cases, model.config, lung_model)
    if dropped:
        log.warning("%d films without plausible lung fields left out", len(dropped))
    options: dict[str, Any] = {}
    if stage is not None:
        if method not in ("attention", "gradcam"):
            raise ConfigError(f"--stage applies to attention and gradcam maps, not to {method}")
        options["stage"] = stage
    if ig_steps is not None:
        if method != "integrated_gradients":
            raise ConfigError(f"--ig-steps applies to integrated_gradients, not to {method}")
        options["steps"] = ig_steps
    methods = (method, "random") if control and method != "random" else (method,)
    scores, map_stage = score_cases(
        model, cases, methods, batch_size, map_threshold, seed, device_t, lung_model, **options
    )
    common = {"split": split, "n_images": len(cases), "source": index.source}
    report = localization_report(
        scores[method],
        checkpoint.labels,
        run=folder.name,
        method=method,
        map_stage=map_stage,
        maps=describe_maps(model, method, map_stage),
        **common,
    )
    write_json(folder.path / LOCALIZATION, report)
    if len(methods) > 1:
        control_report = localization_report(
            scores["random"],
            checkpoint.labels,
            run=folder.name,
            method="random",
            map_stage="random",
            maps=describe_maps(model, "random", "random"),
            **common,
        )
        write_json(folder.path / CONTROL_FILE, control_report)
    log.info("localization of %s (%s) written to %s", folder.name, report["maps"], folder.path)
    return report
