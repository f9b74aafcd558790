"""Plotly figures for the app. Every function takes plain arrays and returns a `go.Figure`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

POSITIVE = "#d62728"  # above the validation threshold
NEGATIVE = "#7f9fbf"
THRESHOLD = "#222222"
BOX = "#00e5ff"  # ground-truth boxes (cyan) and mask outlines (green): visible on gray and inferno
MASK = "#39ff14"
LUNGS = "#8ecae6"  # the lung fields' outline: pale blue, dashed, apart from the lesion's green
LUNG_TRACE = "lung fields"  # the outline's trace name (tests and the browser find it by it)
PEAK_TRACE = "the map's peak"  # where the map peaks: a class map's strongest log-odds, not a tie
# Maps are drawn over the radiograph with transparency falling as the value rises: low values leave
# the film visible, high values colour it (inferno, perceptually uniform). The opacity slider scales
# the whole layer; `map_alpha` gives the same ramp to the PNG download.
MAP_ALPHA = ((0.0, 0.0), (0.2, 0.25), (0.4, 0.5), (0.6, 0.7), (0.8, 0.85), (1.0, 0.95))
_INFERNO = ((0, 0, 4), (74, 12, 107), (165, 44, 96), (237, 105, 37), (251, 155, 6), (252, 255, 164))
MAP_SCALE = [
    [at, f"rgba({r},{g},{b},{alpha})"]
    for (at, alpha), (r, g, b) in zip(MAP_ALPHA, _INFERNO, strict=True)
]
# Attention on minus off: blue where the map is lower with attention, red where higher, clear at 0.
DIFF_SCALE = [
    [0.0, "rgba(5,48,97,0.95)"],
    [0.25, "rgba(67,147,195,0.6)"],
    [0.5, "rgba(247,247,247,0)"],
    [0.75, "rgba(214,96,77,0.6)"],
    [1.0, "rgba(103,0,31,0.95)"],
]
VARIANT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def map_alpha(scaled: np.ndarray) -> np.ndarray:
    """Layer opacity for map values already scaled to [0, 1] (the on-page ramp)."""
    at, alpha = zip(*MAP_ALPHA, strict=True)
    return np.interp(np.clip(scaled, 0.0, 1.0), at, alpha)


def _layout(fig: go.Figure, height: int, **kwargs) -> go.Figure:
    kwargs.setdefault("margin", dict(l=10, r=10, t=40, b=10))
    fig.update_layout(height=height, **kwargs)
    return fig


def probability_chart(
    labels: Sequence[str],
    probabilities: Sequence[float],
    thresholds: Mapping[str, float],
    title: str = "",
) -> go.Figure:
    """Horizontal bars of P(label), validation thresholds as ticks, positives in red."""
    labels = list(labels)
    p = np.asarray(probabilities, dtype=float)
    t = np.array([thresholds.get(label, 0.5) for label in labels], dtype=float)
    positive = p >= t
    fig = go.Figure()
    fig.add_bar(
        y=labels,
        x=p,
        orientation="h",
        marker_color=[POSITIVE if hit else NEGATIVE for hit in positive],
        text=[f"{v:.2f}" + (" ▲" if hit else "") for v, hit in zip(p, positive, strict=True)],
        textposition="outside",
        cliponaxis=False,
        name="probability",
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    )
    fig.add_scatter(
        y=labels,
        x=t,
        mode="markers",
        marker=dict(symbol="line-ns", size=16, line=dict(width=3, color=THRESHOLD)),
        name="validation threshold",
        hovertemplate="%{y} threshold: %{x:.3f}<extra></extra>",
    )
    fig.update_xaxes(range=[0, 1.15], tickvals=[0, 0.25, 0.5, 0.75, 1])
    fig.update_yaxes(autorange="reversed")
    return _layout(
        fig,
        height=90 + 22 * len(labels),
        title=title,
        showlegend=True,
        legend=dict(orientation="h", y=-0.08, yanchor="top"),
    )


def probability_difference_chart(
    labels: Sequence[str], difference: Sequence[float], title: str = ""
) -> go.Figure:
    """Attention-on minus attention-off probability per label."""
    d = np.asarray(difference, dtype=float)
    fig = go.Figure(
        go.Bar(
            y=list(labels),
            x=d,
            orientation="h",
            marker_color=[POSITIVE if v > 0 else NEGATIVE for v in d],
            hovertemplate="%{y}: %{x:+.3f}<extra></extra>",
        )
    )
    limit = max(0.05, float(np.abs(d).max()) * 1.1) if d.size else 0.05
    fig.update_xaxes(range=[-limit, limit], title="Δ probability (on − off)", zeroline=True)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=80 + 20 * len(d), title=title)


def overlay_figure(
    view: np.ndarray,
    heat: np.ndarray | None,
    *,
    opacity: float = 0.45,
    zrange: tuple[float, float] = (0.0, 1.0),
    colorscale: str | list = MAP_SCALE,
    boxes: Sequence[tuple[str, float, float, float, float]] = (),
    contours: Sequence[tuple[str, np.ndarray]] = (),
    lungs: Sequence[np.ndarray] = (),
    peak: tuple[int, int] | None = None,
    title: str = "",
    colorbar_title: str = "map",
) -> go.Figure:
    """A model view (S, S) uint8 with an optional map (S, S) over it, boxes and mask outlines.

    `boxes` are (label, x, y, w, h) and `contours` (label, (N, 2) x-y points), `lungs` the lung
    fields' outline ((N, 2) x-y points each), `peak` the map's peak (row, column), all in
    model-view pixels. The peak is marked because a class map can be 1.0 over a whole region, and
    the colours alone cannot say which place of it the model is surest of.
    """
    size_y, size_x = view.shape
    fig = go.Figure(go.Image(z=np.repeat(view[..., None], 3, axis=2), hoverinfo="skip"))
    if heat is not None:
        fig.add_heatmap(
            z=heat,
            zmin=zrange[0],
            zmax=zrange[1],
            colorscale=colorscale,
            opacity=opacity,
            # the title along the bar: a long one ("P(Consolidation)") does not narrow the map
            colorbar=dict(title=dict(text=colorbar_title, side="right"), thickness=12, len=0.8),
            hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>",
        )
    for label, x, y, w, h in boxes:
        fig.add_shape(type="rect", x0=x, y0=y, x1=x + w, y1=y + h, line=dict(color=BOX, width=2))
        fig.add_annotation(
            x=x,
            y=y,
            text=label,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font=dict(color="white", size=10),
            bgcolor="rgba(0,0,0,0.6)",
        )
    for label, points in contours:
        fig.add_scatter(
            x=points[:, 0],
            y=points[:, 1],
            mode="lines",
            line=dict(color=MASK, width=1.5),
            name=label,
            hoverinfo="name",
            showlegend=False,
        )
    for points in lungs:
        fig.add_scatter(
            x=points[:, 0],
            y=points[:, 1],
            mode="lines",
            line=dict(color=LUNGS, width=1.5, dash="dash"),
            name=LUNG_TRACE,
            hoverinfo="name",
            showlegend=False,
        )
    if peak is not None:
        fig.add_scatter(
            x=[peak[1]],
            y=[peak[0]],
            mode="markers",
            marker=dict(symbol="circle-open", size=14, color="white", line=dict(width=2)),
            name=PEAK_TRACE,
            hoverinfo="name",
            showlegend=False,
        )
    fig.update_xaxes(visible=False, range=[-0.5, size_x - 0.5])
    fig.update_yaxes(visible=False, range=[size_y - 0.5, -0.5], scaleanchor="x")
    # Room for the colour bar whatever its title, so that maps side by side come out one size.
    right = 90 if heat is not None else 10
    return _layout(fig, height=400, title=title, margin=dict(l=10, r=right, t=60, b=10))


def roc_figure(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]], max_fpr: float = 1.0, title=""
) -> go.Figure:
    """ROC curves (name, fpr, tpr, auc); `max_fpr` < 1 zooms into the early-lift region."""
    fig = go.Figure()
    for i, (name, fpr, tpr, auc) in enumerate(curves):
        fig.add_scatter(
            x=fpr,
            y=tpr,
            mode="lines",
            name=f"{name} (AUC {auc:.3f})",
            line=dict(color=VARIANT_COLOURS[i % len(VARIANT_COLOURS)], width=2),
        )
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999"), name="chance"
    )
    fig.update_xaxes(title="false-positive rate", range=[0, max_fpr])
    fig.update_yaxes(title="true-positive rate (sensitivity)", range=[0, 1.01])
    return _layout(fig, height=420, title=title, legend=dict(orientation="h", y=-0.2))


DIFFERENCE_SPAN = 0.05  # the AUC-difference axis spans at least +/- this: noise stays small


def auc_difference_figure(
    labels: Sequence[str],
    difference: Sequence[float],
    ci_low: Sequence[float],
    ci_high: Sequence[float],
    p_values: Sequence[float],
    alpha: float = 0.05,
    title: str = "",
    min_span: float = DIFFERENCE_SPAN,
) -> go.Figure:
    """AUC with attention minus baseline per label, each with its confidence interval (whiskers);
    significant (Holm-adjusted p < alpha) in red.

    The axis is symmetric around a drawn zero line and spans at least +/- `min_span`, widened to
    hold every interval: a difference of 0.001 is a dot on the zero line, not a full-height bar.
    """
    d = np.asarray(difference, dtype=float)
    low = np.asarray(ci_low, dtype=float)
    high = np.asarray(ci_high, dtype=float)
    p = np.asarray(p_values, dtype=float)
    significant = np.nan_to_num(p, nan=1.0) < alpha
    colours = [POSITIVE if s else NEGATIVE for s in significant]
    fig = go.Figure(
        go.Scatter(
            x=list(labels),
            y=d,
            mode="markers+text",
            marker=dict(color=colours, size=10),
            error_y=dict(
                type="data",
                symmetric=False,
                array=np.nan_to_num(high - d),
                arrayminus=np.nan_to_num(d - low),
                color="#555555",
                thickness=1.5,
                width=6,
            ),
            text=[f"p={v:.3f}" if np.isfinite(v) else "p=n/a" for v in p],
            textposition="middle right",
            textfont=dict(size=10),
            customdata=np.column_stack([low, high]),
            hovertemplate="%{x}: ΔAUC %{y:+.4f} [%{customdata[0]:+.4f}, %{customdata[1]:+.4f}],"
            " %{text}<extra></extra>",
            showlegend=False,
        )
    )
    reach = np.abs(np.concatenate([d, low, high]))
    reach = reach[np.isfinite(reach)]
    limit = max(min_span, float(reach.max()) * 1.1 if reach.size else 0.0)
    fig.add_hline(y=0.0, line=dict(color="#222222", width=1))
    fig.update_yaxes(
        title="ΔAUC (attention − baseline), 95% CI", range=[-limit, limit], zeroline=False
    )
    return _layout(fig, height=400, title=title)


def calibration_figure(
    curves: Sequence[tuple[str, Sequence[float], Sequence[float]] | tuple[Any, ...]],
    title: str = "",
) -> go.Figure:
    """Reliability diagrams: (name, mean predicted score per bin, observed fraction positive[,
    before_scaling]). A curve marked before_scaling is the previous curve's run before temperature
    scaling: drawn dashed, in that run's colour."""
    fig = go.Figure()
    colour = -1
    for curve in curves:
        name, mean_score, fraction = curve[:3]
        before = len(curve) > 3 and bool(curve[3])
        colour += 0 if before and colour >= 0 else 1
        fig.add_scatter(
            x=list(mean_score),
            y=list(fraction),
            mode="lines+markers",
            name=name,
            line=dict(
                color=VARIANT_COLOURS[colour % len(VARIANT_COLOURS)],
                dash="dash" if before else "solid",
            ),
            opacity=0.6 if before else 1.0,
        )
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999"), name="perfect"
    )
    fig.update_xaxes(title="mean predicted probability", range=[0, 1])
    fig.update_yaxes(title="fraction positive", range=[0, 1])
    return _layout(fig, height=380, title=title, legend=dict(orientation="h", y=-0.2))


def grouped_bar_figure(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    y_title: str,
    title: str = "",
    y_range: tuple[float, float] | None = (0.0, 1.0),
) -> go.Figure:
    """One bar group per category (e.g. label), one bar per series (e.g. run)."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        numbers = [np.nan if v is None else float(v) for v in values]
        fig.add_bar(
            x=list(categories),
            y=numbers,
            name=name,
            marker_color=VARIANT_COLOURS[i % len(VARIANT_COLOURS)],
            text=["n/a" if np.isnan(v) else f"{v:.2f}" for v in numbers],
            textposition="outside",
            textangle=-90,
            textfont=dict(size=9),
            cliponaxis=False,
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=y_title, range=list(y_range) if y_range else None)
    return _layout(fig, height=400, title=title, legend=dict(orientation="h", y=-0.25))


RANDOM_COLOUR = "#b0b0b0"


def lung_rate_figure(
    categories: Sequence[str],
    ours: Sequence[float],
    random: Sequence[float],
    x_title: str,
    title: str = "",
) -> go.Figure:
    """Each map's in-lung figure (one row per category: a model's map) beside the random map's on
    the same films (grey), as horizontal bars on a 0-1 axis, the first category on top."""
    fig = go.Figure()
    for name, values, colour in (
        ("the map", ours, VARIANT_COLOURS[0]),
        ("random map, same films", random, RANDOM_COLOUR),
    ):
        numbers = [np.nan if v is None else float(v) for v in values]
        fig.add_bar(
            y=list(categories),
            x=numbers,
            orientation="h",
            name=name,
            marker_color=colour,
            text=["n/a" if np.isnan(v) else f"{v:.0%}" for v in numbers],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra>" + name + "</extra>",
        )
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title=x_title, range=[0, 1.12], tickformat=".0%")
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(
        fig,
        height=140 + 48 * len(categories),
        title=title,
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1.0, xanchor="right"),
        margin=dict(l=10, r=10, t=60, b=10),
    )
