"""The pieces of the "Attention over training" page: maps at the view's size, outlines, curves.

Pure functions over a run's `core.training.timeline.Timeline`; the page only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import plotly.graph_objects as go
import torch

from cxr_attention.core.explain.base import upsample
from cxr_attention.core.explain.localization import peak_of
from cxr_attention.core.models.class_attention import CLASS_MAP
from cxr_attention.core.training.timeline import EpochMaps, Timeline


@dataclass(frozen=True)
class LesionFocus:
    """How one map sits on the truth: its mean inside and outside the lesion, and a pointing hit."""

    inside: float
    outside: float
    points_at_lesion: bool


def map_in_view(small: np.ndarray, size: int) -> np.ndarray:
    """A map at feature resolution (h, w) upsampled bilinearly to the view (size, size)."""
    return upsample(torch.from_numpy(np.asarray(small, np.float32))[None, None], (size, size))[
        0, 0
    ].numpy()


def truth_outline(truth: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The truth mask's outer contours as ("truth", (N, 2) x-y points), for `overlay_figure`."""
    contours, _ = cv2.findContours(
        truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    out = []
    for contour in contours:
        points = contour[:, 0, :].astype(np.float64)
        out.append(("truth", np.vstack([points, points[:1]])))
    return out


def lesion_focus(
    heat: np.ndarray, truth: np.ndarray, order: np.ndarray | None = None
) -> LesionFocus:
    """Mean of `heat` (view size) inside and outside the truth mask, and whether its peak is
    inside (the pointing game's peak, `core.explain.localization.peak_of`: by `order` where the
    map has one, a class map's log-odds; none for a flat map)."""
    inside = truth.astype(bool)
    peak = peak_of(heat, order)
    return LesionFocus(
        float(heat[inside].mean()) if inside.any() else float("nan"),
        float(heat[~inside].mean()) if (~inside).any() else float("nan"),
        peak is not None and bool(inside[peak]),
    )


def order_in_view(maps: EpochMaps, name: str | None, image: int, size: int) -> np.ndarray | None:
    """The log-odds that rank a recorded map's places (a class map's), at the view's size; None
    for a gate, Grad-CAM, or a timeline recorded before the log-odds were kept."""
    order = maps.orders.get(name) if name else None
    return None if order is None else map_in_view(order[image], size)


def focus_curves(timeline: Timeline, image: int, gate: str) -> dict[str, list[float]]:
    """Per epoch, for one film: the gate's mean inside and outside the lesion, and the finding's
    probability. Keys "epoch", "inside", "outside", "probability"."""
    size = timeline.images.truth.shape[-1]
    truth = timeline.images.truth[image]
    curves: dict[str, list[float]] = {"epoch": [], "inside": [], "outside": [], "probability": []}
    for maps in timeline.epochs:
        if gate not in maps.gates:
            continue
        heat = map_in_view(maps.gates[gate][image], size)
        focus = lesion_focus(heat, truth, order_in_view(maps, gate, image, size))
        curves["epoch"].append(maps.epoch)
        curves["inside"].append(focus.inside)
        curves["outside"].append(focus.outside)
        curves["probability"].append(
            float(maps.probabilities[image, _label_index(timeline, image)])
        )
    return curves


def pointing_by_epoch(timeline: Timeline, gate: str | None) -> list[tuple[int, float]]:
    """(epoch, share of the timeline films whose map peaks inside the lesion), for a gate or, with
    None, Grad-CAM."""
    size = timeline.images.truth.shape[-1]
    out = []
    for maps in timeline.epochs:
        stack = maps.gradcam if gate is None else maps.gates.get(gate)
        if stack is None:
            continue
        hits = [
            lesion_focus(
                map_in_view(stack[i], size),
                timeline.images.truth[i],
                order_in_view(maps, gate, i, size),
            ).points_at_lesion
            for i in range(len(stack))
        ]
        out.append((maps.epoch, float(np.mean(hits))))
    return out


def _label_index(timeline: Timeline, image: int) -> int:
    return list(timeline.images.labels).index(timeline.images.findings[image])


def focus_figure(curves: dict[str, list[float]], title: str = "", what: str = "gate") -> go.Figure:
    """The map (`what`: "gate", "class map") inside vs outside the lesion, and the finding's
    probability, over the epochs."""
    fig = go.Figure()
    fig.add_scatter(
        x=curves["epoch"],
        y=curves["inside"],
        name=f"{what} inside the lesion",
        mode="lines+markers",
    )
    fig.add_scatter(
        x=curves["epoch"], y=curves["outside"], name=f"{what} elsewhere", mode="lines+markers"
    )
    fig.add_scatter(
        x=curves["epoch"],
        y=curves["probability"],
        name="probability of the finding",
        mode="lines+markers",
        line=dict(dash="dot"),
    )
    fig.update_xaxes(title="epoch", dtick=1)
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(height=280, title=title, margin=dict(l=10, r=10, t=40, b=10))
    return fig


@dataclass(frozen=True)
class MapPanel:
    """One map of an epoch, as the page shows it."""

    title: str
    small: np.ndarray  # (h, w) at the map's own resolution
    name: str | None  # the gate's name ("stage4", "class"); None for Grad-CAM
    zrange: tuple[float, float] | None  # None: the map's own range
    colorbar: str = "gate"  # what the colour measures


def map_words(name: str) -> str:
    """What a recorded map is: "class map" (a class-specific head's, of the shown finding) or
    "gate" (a spatial gate's, the same for every label)."""
    return "class map" if name == CLASS_MAP else "gate"


def map_name(name: str) -> str:
    """A recorded map in a few words: "class map of the finding", "gate after stage4"."""
    return "class map of the finding" if name == CLASS_MAP else f"gate after {name}"


def map_panels(maps: EpochMaps, image: int, finding: str) -> list[MapPanel]:
    """The maps of one film after one epoch: gates (stretched over their own range, which is often
    tiny), a class-specific head's map of the shown finding (a probability: on 0-1), Grad-CAM
    (divided by its peak: on 0-1)."""
    panels = []
    for name in sorted(maps.gates):
        small = maps.gates[name][image]
        if name == CLASS_MAP:
            title = f"Class map of {finding}"
            panels.append(MapPanel(title, small, name, (0.0, 1.0), f"P({finding})"))
        else:
            panels.append(MapPanel(f"Gate after {name} (every label)", small, name, None))
    gradcam = maps.gradcam[image]
    panels.append(MapPanel("Grad-CAM (final features)", gradcam, None, (0.0, 1.0), "÷ peak"))
    return panels


def epoch_maps(timeline: Timeline, epoch: int) -> EpochMaps:
    """The maps recorded after `epoch`."""
    for maps in timeline.epochs:
        if maps.epoch == epoch:
            return maps
    raise KeyError(epoch)
