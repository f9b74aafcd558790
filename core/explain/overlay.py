"""Drawing maps on the radiograph: OpenCV colormaps, adjustable opacity, per-image or shared scale.

All functions take and return numpy arrays: the model view is uint8 (H, W) grayscale as
`core.data.preprocess.model_view` makes it; maps are float (H, W); results are RGB uint8 (H, W, 3)
(OpenCV draws BGR; we convert once, here, so callers never think about it).

Scaling. By default a map is stretched over its own range (per image). To compare models side by
side fairly, give every panel the same `vmin`/`vmax` (`shared_scale` computes them over several
maps); values outside are clipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from cxr_attention.core.errors import ConfigError

COLORMAPS: dict[str, int] = {
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "plasma": cv2.COLORMAP_PLASMA,
    "hot": cv2.COLORMAP_HOT,
    "bone": cv2.COLORMAP_BONE,
}


def _diverging_lut() -> np.ndarray:
    """Blue - white - red, 256 entries, BGR (OpenCV has no diverging colormap of its own)."""
    t = np.linspace(-1.0, 1.0, 256)
    red = np.where(t < 0, 1.0 + t, 1.0)
    blue = np.where(t > 0, 1.0 - t, 1.0)
    green = 1.0 - np.abs(t)
    bgr = np.stack([blue, green, red], axis=-1)
    return np.clip(np.rint(bgr * 255), 0, 255).astype(np.uint8).reshape(256, 1, 3)


def scale_map(
    heatmap: np.ndarray, vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map values to [0, 1]: over [vmin, vmax] when given, else over the map's own range.

    A constant map (or vmax == vmin) becomes all zeros rather than dividing by zero.
    """
    heatmap = np.asarray(heatmap, dtype=np.float32)
    lo = float(np.nanmin(heatmap)) if vmin is None else float(vmin)
    hi = float(np.nanmax(heatmap)) if vmax is None else float(vmax)
    if hi <= lo:
        return np.zeros_like(heatmap)
    return np.clip((np.nan_to_num(heatmap, nan=lo) - lo) / (hi - lo), 0.0, 1.0)


def shared_scale(maps: Sequence[np.ndarray]) -> tuple[float, float]:
    """(vmin, vmax) over several maps, to draw them on one common scale."""
    if not maps:
        raise ConfigError("shared_scale needs at least one map")
    return (
        float(min(np.nanmin(np.asarray(m)) for m in maps)),
        float(max(np.nanmax(np.asarray(m)) for m in maps)),
    )


def colorize(
    heatmap: np.ndarray,
    colormap: str = "jet",
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """A map (H, W) as an RGB uint8 image (H, W, 3) through an OpenCV colormap."""
    try:
        code = COLORMAPS[colormap]
    except KeyError:
        raise ConfigError(
            f"unknown colormap {colormap!r}: choose one of {', '.join(COLORMAPS)}"
        ) from None
    levels = np.rint(scale_map(heatmap, vmin, vmax) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, code), cv2.COLOR_BGR2RGB)


def _gray_rgb(view: np.ndarray) -> np.ndarray:
    view = np.asarray(view)
    if view.dtype != np.uint8 or view.ndim != 2:
        raise ConfigError(
            "the background must be the uint8 grayscale model view (H, W) from "
            "core.data.preprocess.model_view"
        )
    return cv2.cvtColor(view, cv2.COLOR_GRAY2RGB)


def _resize_to(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A coarse map at the film's size, each cell where its features look (`base.upsample`)."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape != shape:
        import torch

        from cxr_attention.core.explain.base import upsample

        heatmap = upsample(torch.from_numpy(heatmap)[None, None], shape)[0, 0].numpy()
    return heatmap


def _blend(gray: np.ndarray, colour: np.ndarray, opacity: float) -> np.ndarray:
    if not 0.0 <= opacity <= 1.0:
        raise ConfigError(f"opacity must lie in [0, 1], got {opacity}")
    mixed = (1.0 - opacity) * gray.astype(np.float32) + opacity * colour.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def overlay(
    view: np.ndarray,
    heatmap: np.ndarray,
    opacity: float = 0.4,
    colormap: str = "jet",
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """The grayscale model view (uint8 H x W) with a coloured map on top -> RGB uint8 (H, W, 3).

    `opacity` 0 shows the radiograph alone, 1 the map alone. A map of another size is resized
    bilinearly to the view. `vmin`/`vmax` fix the colour scale (see `shared_scale`).
    """
    gray = _gray_rgb(view)
    colour = colorize(_resize_to(heatmap, gray.shape[:2]), colormap, vmin, vmax)
    return _blend(gray, colour, opacity)


def difference_map(map_on: np.ndarray, map_off: np.ndarray) -> np.ndarray:
    """Attention on minus attention off, float (H, W) in [-1, 1] for maps in [0, 1]."""
    map_on = np.asarray(map_on, dtype=np.float32)
    map_off = np.asarray(map_off, dtype=np.float32)
    if map_on.shape != map_off.shape:
        raise ConfigError(f"difference of maps of shapes {map_on.shape} and {map_off.shape}")
    return map_on - map_off


def colorize_difference(difference: np.ndarray, limit: float | None = None) -> np.ndarray:
    """A signed map as RGB uint8: blue below 0, white at 0, red above; symmetric scale +-limit.

    `limit` defaults to the largest absolute value (per image); give one for a shared scale.
    """
    difference = np.asarray(difference, dtype=np.float32)
    if limit is None:
        limit = float(np.nanmax(np.abs(difference))) if difference.size else 0.0
    if limit <= 0:
        levels = np.full(difference.shape, 128, dtype=np.uint8)
    else:
        levels = np.rint((np.clip(difference / limit, -1, 1) + 1) * 127.5).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, _diverging_lut()), cv2.COLOR_BGR2RGB)


def overlay_difference(
    view: np.ndarray, difference: np.ndarray, opacity: float = 0.5, limit: float | None = None
) -> np.ndarray:
    """The model view with a signed difference map on top (see `colorize_difference`)."""
    gray = _gray_rgb(view)
    colour = colorize_difference(_resize_to(difference, gray.shape[:2]), limit)
    return _blend(gray, colour, opacity)
