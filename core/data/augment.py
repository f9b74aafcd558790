"""Training augmentation for radiographs, on the device, for a whole batch at once.

Mild by design: a random-resized crop (keeping 85-100 % of the area), a small rotation (patient
positioning varies by a few degrees) and brightness/contrast jitter (exposure varies). One
`F.affine_grid` + `F.grid_sample` warps the batch, so augmentation costs the GPU almost nothing and
the loader never has to do it on the CPU.

Horizontal flips are OFF by default: a flipped chest film puts the heart on the right (dextrocardia,
rare and itself a finding), moves the aortic knob and gastric bubble, and teaches the model anatomy
it never sees. Turn it on only knowingly (`hflip=True`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RadiographAugment(nn.Module):
    """Random crop-and-resize, rotation and brightness/contrast for a float batch (B, 1, S, S).

    Input: float in [0, 1] (uint8 is converted by /255), on any device; output: same shape, float,
    in [0, 1]. Per image: area fraction `scale` (uniform), rotation uniform in +-`max_rotation_deg`,
    crop centre anywhere that keeps the crop inside the image, brightness offset uniform in
    +-`brightness`, contrast factor uniform in 1 +- `contrast` (around the image mean), and with
    `hflip` a left-right flip with probability 0.5. Out-of-image pixels are black, like the padding.
    In eval mode (`.eval()`), and at zero strength, the batch is returned unchanged. Random numbers
    come from `generator` when given, so a seeded generator gives the same batch twice.
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.85, 1.0),
        max_rotation_deg: float = 7.0,
        brightness: float = 0.1,
        contrast: float = 0.1,
        hflip: bool = False,
        max_shift: float = 0.0,
    ) -> None:
        super().__init__()
        low, high = float(scale[0]), float(scale[1])
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        if max_rotation_deg < 0 or brightness < 0 or contrast < 0:
            raise ValueError("rotation, brightness and contrast strengths must be >= 0")
        if not 0.0 <= max_shift <= 0.5:
            raise ValueError(f"max_shift must lie in [0, 0.5] of the film, got {max_shift}")
        self.max_shift = float(max_shift)
        self.scale = (low, high)
        self.max_rotation_deg = float(max_rotation_deg)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.hflip = bool(hflip)

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, max_rotation_deg={self.max_rotation_deg}, "
            f"brightness={self.brightness}, contrast={self.contrast}, hflip={self.hflip}, "
            f"max_shift={self.max_shift}"
        )

    @property
    def warps(self) -> bool:
        """Whether the geometric part does anything (it is skipped entirely otherwise)."""
        return (
            self.scale != (1.0, 1.0)
            or self.max_rotation_deg > 0
            or self.hflip
            or self.max_shift > 0
        )

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A (B, 1, S, S) batch of films, or (B, 2, S, S): films and a region carried along (the
        lung fields), which moves with its film and keeps its values (no brightness, contrast)."""
        if x.ndim != 4 or x.shape[1] not in (1, 2):
            raise ValueError(f"expected a (B, 1 or 2, S, S) batch, got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if not self.training:
            return x
        # All random numbers of the batch in one draw: (area, rotation, cx, cy, flip, bright, contr),
        # then the two of the film's shift when it moves (so the default draws what it always drew).
        device = generator.device if generator is not None else x.device
        width = 9 if self.max_shift > 0 else 7
        u = torch.rand(x.shape[0], width, generator=generator, device=device).to(x.device, x.dtype)
        if self.warps:
            x = F.grid_sample(
                x,
                F.affine_grid(self._affine(u), list(x.shape), align_corners=False),
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )
        if self.brightness > 0 or self.contrast > 0:
            offset = (2 * u[:, 5] - 1).mul_(self.brightness).view(-1, 1, 1, 1)
            factor = (2 * u[:, 6] - 1).mul_(self.contrast).add_(1).view(-1, 1, 1, 1)
            # (x - mean) * factor + mean + offset, in one pass over the pixels.
            film = x[:, :1]
            bias = film.mean(dim=(1, 2, 3), keepdim=True).mul_(1 - factor).add_(offset)
            film = torch.addcmul(bias, film, factor).clamp_(0.0, 1.0)
            x = torch.cat((film, x[:, 1:]), dim=1) if x.shape[1] > 1 else film
        return x

    def _affine(self, u: torch.Tensor) -> torch.Tensor:
        """(B, 2, 3) maps from output to input coordinates ([-1, 1] normalised) per image."""
        low, high = self.scale
        side = torch.sqrt(low + (high - low) * u[:, 0])  # crop side as a fraction of the image
        angle = (2 * u[:, 1] - 1) * math.radians(self.max_rotation_deg)
        # The crop centre may move as far as keeps the (unrotated) crop inside the image.
        shift_x = (2 * u[:, 2] - 1) * (1 - side)
        shift_y = (2 * u[:, 3] - 1) * (1 - side)
        if self.max_shift > 0:  # the chest moves by up to max_shift of the film (black comes in)
            shift_x = shift_x + (2 * u[:, 7] - 1) * (2 * self.max_shift)
            shift_y = shift_y + (2 * u[:, 8] - 1) * (2 * self.max_shift)
        ones = torch.ones_like(side)
        flip = torch.where(u[:, 4] < 0.5, -ones, ones) if self.hflip else ones
        cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin, shift_x], dim=1),
                torch.stack([sin * flip, cos, shift_y], dim=1),
            ],
            dim=1,
        )
        return theta
