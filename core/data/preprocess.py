"""The one preprocessing path, shared by training, evaluation, the cache, `predict` and the app.

A radiograph (float, H x W, [0, 1], 0 = black) becomes the model's view in two steps:

1. `model_view`: pad to a square with black (never stretch: the heart's width matters), resize with
   area interpolation to the model's image size, quantise to uint8. This is what the cache stores
   and what `predict --save-maps` writes as `<stem>_input.png`.
2. `to_model_input`: a uint8 batch (B, H, W) or (B, 1, H, W) becomes float, replicated to the
   model's input channels and normalised with the checkpoint's mean and std. This runs on the
   model's device, so loaders move uint8 (4x less than float).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cxr_attention.core.data.radiograph import Radiograph

if TYPE_CHECKING:
    import torch


def pad_to_square(image: np.ndarray, value: float = 0.0) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad (H, W) to (S, S), S = max(H, W), centred; returns the image and the (top, left) offset."""
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    if h == w:
        return image, (0, 0)
    out = np.full((side, side), value, dtype=image.dtype)
    out[top : top + h, left : left + w] = image
    return out, (top, left)


def model_view(image: np.ndarray | Radiograph, size: int) -> np.ndarray:
    """The image as the model sees it before normalisation: (size, size) uint8.

    `image` is a `Radiograph`, or (H, W) float in [0, 1], or uint8. Float input is quantised to
    8 bits first (exact for 8-bit sources), so a film gives the same bytes whichever way it comes
    in. Padding is black and centred; shrinking uses OpenCV's area interpolation.
    """
    if isinstance(image, Radiograph):
        image = image.gray8 if image.gray8 is not None else image.pixels
    if image.dtype != np.uint8:
        image = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    square, _ = pad_to_square(image)
    interpolation = cv2.INTER_AREA if square.shape[0] >= size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def square_geometry(height: int, width: int, size: int) -> tuple[float, int, int]:
    """How original pixel coordinates map into the model view: (scale, top, left) of the padding.

    A point (x, y) of the original image lands at ((x + left) * scale, (y + top) * scale).
    """
    side = max(height, width)
    return size / side, (side - height) // 2, (side - width) // 2


def to_model_input(
    batch: torch.Tensor | np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    in_chans: int = 3,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """uint8 (B, H, W) or (B, 1, H, W) -> normalised float (B, in_chans, H, W) on `device`."""
    import torch  # here, so that cache-building worker processes never load torch

    dtype = torch.float32 if dtype is None else dtype
    x = torch.as_tensor(batch)
    if device is not None:
        x = x.to(device, non_blocking=True)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    x = x.to(dtype).div_(255.0) if x.dtype == torch.uint8 else x.to(dtype)
    x = x.expand(-1, in_chans, -1, -1) if x.shape[1] == 1 else x
    mean_t = torch.tensor(mean[:in_chans], dtype=dtype, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std[:in_chans], dtype=dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t) / std_t


def config_input(batch: torch.Tensor | np.ndarray, config, device=None) -> torch.Tensor:
    """`to_model_input` with the normalisation a `ModelConfig` records."""
    return to_model_input(batch, config.mean, config.std, config.in_chans, device)
