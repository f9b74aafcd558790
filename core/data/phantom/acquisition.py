"""How a phantom chest becomes a film: view, positioning, exposure, scatter, blur and noise.

Attenuation A (see `anatomy.py`) is exposed as 1 - exp(-exposure * A): air stays black, bone and
thick soft tissue go white, with the film's compression of bright regions. AP films (portable,
supine) get a magnified heart (in `anatomy.py`), more scatter (less contrast) and more noise; both
views get a slight rotation, scale and shift, a gamma and, on some films, a side marker.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cxr_attention.core.data.phantom.frame import Frame

AP_FRACTION_NORMAL = 0.3  # share of AP films among normal studies ...
AP_FRACTION_ABNORMAL = 0.5  # ... and among abnormal ones (sicker patients are filmed in bed)


@dataclass(frozen=True)
class Acquisition:
    """The settings of one exposure."""

    view: str  # "PA" or "AP"
    rotation: float  # radians
    scale: float  # 1 = the patient frame fills the image
    shift: tuple[float, float]  # image widths
    exposure: float  # multiplies attenuation before the film curve
    gamma: float  # film/display gamma
    scatter: float  # fraction of signal replaced by its heavy blur
    compress: float  # processing: how much broad contrast is flattened
    detail: float  # processing: how much fine contrast is lifted
    noise: float  # quantum noise level
    marker: str  # "", "L" or "R": a lead letter in a corner
    marker_corner: int  # 0..3


def sample_view(rng: np.random.Generator, abnormal: bool) -> str:
    """PA or AP; AP is commoner among abnormal studies, as in ChestX-ray14."""
    p_ap = AP_FRACTION_ABNORMAL if abnormal else AP_FRACTION_NORMAL
    return "AP" if rng.random() < p_ap else "PA"


def sample_acquisition(rng: np.random.Generator, view: str) -> Acquisition:
    """Positioning and exposure of one film."""
    ap = view == "AP"
    marker_draw = rng.random()
    return Acquisition(
        view=view,
        rotation=float(np.deg2rad(rng.normal(0.0, 1.8))),
        scale=float(rng.uniform(0.93, 1.04)),
        shift=(float(rng.normal(0.0, 0.015)), float(rng.normal(0.0, 0.015))),
        exposure=float(rng.uniform(0.7, 0.95)),
        gamma=float(rng.uniform(1.0, 1.4)),
        scatter=float(rng.uniform(0.12, 0.22) if ap else rng.uniform(0.04, 0.12)),
        compress=float(rng.uniform(0.08, 0.2)),
        detail=float(rng.uniform(0.2, 0.5)),
        noise=float(rng.uniform(0.012, 0.025) if ap else rng.uniform(0.006, 0.016)),
        marker="" if marker_draw < 0.5 else ("L" if marker_draw < 0.85 else "R"),
        marker_corner=int(rng.integers(0, 4)),
    )


def make_frame(acquisition: Acquisition, size: int) -> Frame:
    """The drawing frame of this film."""
    return Frame(size, acquisition.rotation, acquisition.scale, acquisition.shift)


def expose(
    attenuation: np.ndarray, acquisition: Acquisition, frame: Frame, rng: np.random.Generator
) -> np.ndarray:
    """Attenuation (S, S) float -> the film as uint8 (S, S), 0 = black (air)."""
    signal = 1.0 - np.exp(-acquisition.exposure * np.clip(attenuation, 0.0, None))
    if acquisition.scatter > 0:
        haze = frame.blur(signal, 0.12)
        signal = (1.0 - acquisition.scatter) * signal + acquisition.scatter * haze
    signal = frame.blur(signal, 0.0015)  # detector unsharpness
    # Multiscale processing as on a digital radiograph: compress the broad range, lift detail.
    low = frame.blur(signal, 0.07)
    signal = (
        low * (1.0 - acquisition.compress)
        + acquisition.compress * float(low.mean())
        + (signal - low) * (1.0 + acquisition.detail)
    )
    noise = rng.standard_normal(signal.shape, dtype=np.float32)
    signal = signal + acquisition.noise * np.sqrt(np.clip(signal, 0.02, 1.0)) * noise
    # Window like a processed radiograph: black point at air, white point at dense tissue.
    sample = signal[::3, ::3]
    lo, hi = float(np.percentile(sample, 0.5)), float(np.percentile(sample, 99.7)) + 0.02
    film = np.clip((signal - lo) / (hi - lo), 0.0, 1.0) ** acquisition.gamma
    image = np.clip(film * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if acquisition.marker:
        _draw_marker(image, acquisition)
    return image


def _draw_marker(image: np.ndarray, acquisition: Acquisition) -> None:
    size = image.shape[0]
    scale = size / 512.0
    margin = int(round(size * 0.04))
    x = margin if acquisition.marker_corner in (0, 2) else size - margin - int(22 * scale)
    y = margin + int(22 * scale) if acquisition.marker_corner in (0, 1) else size - margin
    thickness = max(1, int(round(2 * scale)))
    cv2.putText(
        image,
        acquisition.marker,
        (x, y),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        235,
        thickness,
        cv2.LINE_AA,
    )
