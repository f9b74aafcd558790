"""Watch attention form: after every epoch, the maps of a fixed handful of validation images.

`fit` picks up to `TIMELINE_IMAGES` validation films that carry truth (the phantom's lesion masks,
or ChestX-ray14 boxes), one finding each, as many different findings as there are, and after each
epoch records what the model makes of them, at the maps' own resolution (a few hundred bytes an
image), into the run folder:

    RUN/timeline/images.npz     views uint8 (N, S, S) as the model sees them (before normalisation),
                                truth uint8 (N, S, S) (1 inside the shown finding's mask or boxes),
                                image_ids (N,), findings (N,) the finding shown per image,
                                labels (L,) the model's labels in order
    RUN/timeline/epoch_007.npz  gate_<name> float16 (N, h, w) per attention gate (in [0, 1];
                                gate_class: a class-specific head's map of the shown finding),
                                order_<name> float32 (N, h, w) the log-odds a map is the sigmoid
                                of (a class map's), which rank its places where it ties at 1.0,
                                gradcam float16 (N, h, w) (Grad-CAM of the shown finding's logit on
                                the final feature map, divided by its maximum), probabilities
                                float16 (N, L) (sigmoid, the checkpoint's label order)

`read_timeline` gives it back to the app. Epochs written after a `--resume` point replace the ones
of the interrupted attempt; nothing here draws random numbers, so resumed runs stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cxr_attention.core.data.preprocess import config_input, model_view, square_geometry
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.explain.gradcam import GradCam
from cxr_attention.core.explain.localization import box_mask
from cxr_attention.core.explain.localize_run import (
    labelled_cases,
    truth_cases,
    truth_in_view,
    usable_cases,
)
from cxr_attention.core.lungs.views import film_input
from cxr_attention.core.models.classifier import AttentionClassifier

TIMELINE = "timeline"
TIMELINE_IMAGES = 6


@dataclass(frozen=True)
class TimelineImages:
    """The fixed films a run's timeline follows."""

    views: np.ndarray | None  # uint8 (N, S, S); None where stripped (`strip_views`): read the films
    truth: np.ndarray  # uint8 (N, S, S), 1 inside the shown finding
    image_ids: tuple[str, ...]
    findings: tuple[str, ...]  # the finding shown for each image
    labels: tuple[str, ...]  # the model's labels, the columns of `EpochMaps.probabilities`


@dataclass(frozen=True)
class EpochMaps:
    """What the model made of the timeline images after one epoch."""

    epoch: int
    gates: dict[str, np.ndarray]  # name -> float (N, h, w) in [0, 1]
    gradcam: np.ndarray  # float (N, h, w) in [0, 1]
    probabilities: np.ndarray  # float (N, L)
    # name -> log-odds (N, h, w) of a gate that is their sigmoid (a class map): the order of its
    # places, where the probabilities tie at 1.0; absent in timelines recorded before they were
    orders: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Timeline:
    images: TimelineImages
    epochs: tuple[EpochMaps, ...]  # in epoch order


OUTLINED_SOURCES = ("phantom", "chestxray14")  # readers whose films can carry lesion outlines


def pick_timeline_images(
    index,
    frame: pd.DataFrame,
    labels: Sequence[str],
    size: int,
    n: int = TIMELINE_IMAGES,
    config=None,
    lung_model=None,
) -> TimelineImages | None:
    """Up to `n` films of `frame` with truth, cycling through the findings present (by image id).

    With the model's `config` and the `lung_model`, films are shown as a model with a lung prior
    sees them (its lung fields alone, or their box), the truth carried into that view.

    None when no film of `frame` carries truth (ChestX-ray14's validation split has no boxes).
    A collection that has no outlines at all (class folders, a table) follows films labelled with
    one finding instead, with an empty truth: the maps are shown without a lesion to meet.
    """
    if index.source in OUTLINED_SOURCES:
        cases, _ = truth_cases(index, frame, labels)
    else:
        cases = labelled_cases(frame, labels)
    if config is not None:  # a model with a lung prior cannot read a film without lung fields
        cases, _ = usable_cases(cases, config, lung_model)
    by_label: dict[str, list] = {}
    for case in cases:  # sorted by image id, so the choice is deterministic
        if len(case.labels) == 1:  # one finding per film: the map has one right answer
            by_label.setdefault(case.labels[0], []).append(case)
    chosen = []
    order = [label for label in labels if label in by_label]
    while len(chosen) < n and any(by_label[label] for label in order):
        for label in order:
            if by_label[label] and len(chosen) < n:
                chosen.append(by_label[label].pop(0))
    if not chosen:
        return None
    views, truths = [], []
    for case in chosen:
        if config is not None and config.lung_prior != "none":
            film = film_input(case.path, config, lung_model)
            view, geometry, carry = film.view, film.geometry, film.truth
        else:
            image = load_radiograph(case.path)
            view = model_view(image.pixels, size)
            geometry = square_geometry(image.height, image.width, size)
            carry = None
        views.append(view)
        if case.masks.get(case.labels[0]) is None and not case.boxes:  # no outline exists
            truths.append(np.zeros((size, size), np.uint8))
            continue
        region = truth_in_view(case, geometry, size)[case.labels[0]]
        mask = region if isinstance(region, np.ndarray) else box_mask(region, (size, size))
        truths.append((carry(mask) if carry else mask).astype(np.uint8))
    return TimelineImages(
        np.stack(views),
        np.stack(truths),
        tuple(c.image_id for c in chosen),
        tuple(c.labels[0] for c in chosen),
        tuple(labels),
    )


@torch.no_grad()
def _gate_maps(
    model: AttentionClassifier, x: torch.Tensor, shown: torch.Tensor
) -> tuple[dict, dict, torch.Tensor]:
    """Each attention map (N, h, w), the log-odds of those that have them, and the
    probabilities; a per-label map (a class-specific head's) is taken for the finding shown in
    each image (`shown`, label indices (N,))."""
    out = model.forward_with_maps(x) if model.has_attention else None
    if out is None:
        return {}, {}, torch.sigmoid(model(x))
    rows = torch.arange(len(shown), device=x.device)

    def pick(v: torch.Tensor) -> torch.Tensor:
        return v[rows, shown] if v.shape[1] > 1 else v[:, 0]

    maps = {k: pick(v) for k, v in out.maps.items()}
    return maps, {k: pick(v) for k, v in out.log_odds.items()}, torch.sigmoid(out.logits)


def epoch_maps(model: AttentionClassifier, images: TimelineImages, epoch: int) -> EpochMaps:
    """The attention maps, Grad-CAM and probabilities of the timeline images (model in eval
    mode); a class-specific head's map is that of the finding shown (key gate_class)."""
    device = next(model.parameters()).device
    x = config_input(images.views, model.config, device)
    labels = list(model.config.labels)
    shown = torch.tensor([labels.index(f) for f in images.findings], device=device)
    gates, orders, probabilities = _gate_maps(model, x, shown)
    wanted = tuple(sorted({labels.index(f) for f in images.findings}))
    raw = GradCam(model).raw_maps(x, wanted).maps  # (N, K, h, w)
    pick = torch.tensor([wanted.index(labels.index(f)) for f in images.findings], device=device)
    cam = raw[torch.arange(len(pick), device=device), pick]
    peak = cam.amax(dim=(-2, -1), keepdim=True)
    cam = torch.where(peak > 0, cam / peak.clamp_min(1e-12), cam)
    return EpochMaps(
        epoch,
        {k: v.float().cpu().numpy() for k, v in gates.items()},
        cam.float().cpu().numpy(),
        probabilities.float().cpu().numpy(),
        {k: v.float().cpu().numpy() for k, v in orders.items()},
    )


def write_timeline_images(run: Path, images: TimelineImages) -> None:
    folder = run / TIMELINE
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / "images.npz",
        views=images.views,
        truth=images.truth,
        image_ids=np.array(images.image_ids),
        findings=np.array(images.findings),
        labels=np.array(images.labels),
    )


def strip_views(run: Path) -> None:
    """Remove the films themselves from a run's timeline, keeping which films and every map.

    A zoo that learnt real patients' films ships its timeline so: no film of a real collection
    is copied anywhere. The app then reads the films from the collection (`app --data DIR`).
    """
    path = Path(run) / TIMELINE / "images.npz"
    if not path.is_file():
        return
    with np.load(path) as f:
        kept = {k: f[k] for k in f.files if k != "views"}
    np.savez_compressed(path, **kept)


def write_epoch_maps(run: Path, maps: EpochMaps) -> None:
    arrays = {f"gate_{k}": v.astype(np.float16) for k, v in maps.gates.items()}
    # log-odds in float32: float16 steps by 1/64 at 16-32, where a sure head's places sit
    arrays |= {f"order_{k}": v.astype(np.float32) for k, v in maps.orders.items()}
    np.savez_compressed(
        run / TIMELINE / f"epoch_{maps.epoch:03d}.npz",
        gradcam=maps.gradcam.astype(np.float16),
        probabilities=maps.probabilities.astype(np.float16),
        **arrays,
    )


def has_timeline(run: str | Path) -> bool:
    """Whether a run folder holds a timeline."""
    return (Path(run) / TIMELINE / "images.npz").is_file()


def drop_epochs_after(run: Path, epoch: int) -> None:
    """Forget epochs after `epoch` (a resumed run redoes them)."""
    for path in (run / TIMELINE).glob("epoch_*.npz"):
        if int(path.stem.split("_")[1]) > epoch:
            path.unlink()


def read_timeline(run: str | Path) -> Timeline | None:
    """A run's timeline, or None when it has none (runs from before timelines, no truth)."""
    folder = Path(run) / TIMELINE
    if not has_timeline(run):
        return None
    with np.load(folder / "images.npz") as f:
        images = TimelineImages(
            f["views"] if "views" in f.files else None,
            f["truth"],
            tuple(str(s) for s in f["image_ids"]),
            tuple(str(s) for s in f["findings"]),
            tuple(str(s) for s in f["labels"]),
        )
    epochs = []
    for path in sorted(folder.glob("epoch_*.npz")):
        with np.load(path) as f:
            gates = {k[5:]: f[k].astype(np.float32) for k in f.files if k.startswith("gate_")}
            orders = {k[6:]: f[k] for k in f.files if k.startswith("order_")}
            epochs.append(
                EpochMaps(
                    int(path.stem.split("_")[1]),
                    gates,
                    f["gradcam"].astype(np.float32),
                    f["probabilities"].astype(np.float32),
                    orders,
                )
            )
    return Timeline(images, tuple(epochs))
