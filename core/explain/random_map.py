"""A random map: the control every localization score is compared against.

Uniform noise on a coarse grid (by default the model's final feature grid, so the control is as
smooth as an attention or Grad-CAM map of the same model), upsampled bilinearly like the others.
Seeded: the same seed (or the same `torch.Generator` state) gives the same maps.
"""

from __future__ import annotations

import torch

from core.errors import ConfigError
from core.explain.base import Explainer, RawMaps


class RandomMap(Explainer):
    """Independent uniform maps per image and label, on a `grid` x `grid` lattice."""

    name = "random"
    normalise = False  # uniform in [0, 1] by construction

    def raw_maps(
        self,
        x: torch.Tensor,
        indices: tuple[int, ...],
        seed: int = 0,
        generator: torch.Generator | None = None,
        grid: int | None = None,
    ) -> RawMaps:
        if grid is None:
            grid = max(1, int(x.shape[-1]) // self.model.stages[-1].reduction)
        if grid < 1:
            raise ConfigError(f"random map grid must be at least 1, got {grid}")
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed))
        maps = torch.rand((x.shape[0], len(indices), grid, grid), generator=generator)
        return RawMaps(maps.to(x.device), "random")
