"""A random map: the control every localization score is compared against.

Uniform noise smoothed with a Gaussian (sigma: half a final feature cell by default, so the blobs
are about as wide as one cell of an attention or Grad-CAM map of the same model), then stretched
to [0, 1]. The smoothing is circular (on a torus, through the FFT), so the noise is stationary:
every pixel is equally likely to hold the maximum, and the control's pointing-game rate equals the
share of the image the truth covers. (Upsampling a coarse random grid instead would put most
maxima on flat tops at the image border, where lesions never are, and flatter the model.)
Seeded: the same seed (or the same `torch.Generator` state) gives the same maps.
"""

from __future__ import annotations

import torch

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.base import Explainer, RawMaps


def _torus_gaussian(size: int, sigma: float) -> torch.Tensor:
    """A 1-D Gaussian over circular distances 0..size-1, summing to 1."""
    index = torch.arange(size, dtype=torch.float64)
    distance = torch.minimum(index, size - index)
    weights = torch.exp(-0.5 * (distance / sigma) ** 2)
    return weights / weights.sum()


def smooth_noise(
    shape: tuple[int, int, int, int], sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """Uniform noise (B, K, H, W), circularly smoothed with a Gaussian of `sigma` pixels, in [0, 1]."""
    noise = torch.rand(shape, generator=generator, dtype=torch.float64)
    height, width = shape[-2:]
    kernel = torch.outer(_torus_gaussian(height, sigma), _torus_gaussian(width, sigma))
    smooth = torch.fft.irfft2(torch.fft.rfft2(noise) * torch.fft.rfft2(kernel), s=(height, width))
    lo = smooth.amin(dim=(-2, -1), keepdim=True)
    hi = smooth.amax(dim=(-2, -1), keepdim=True)
    return ((smooth - lo) / (hi - lo).clamp_min(1e-12)).float()


class RandomMap(Explainer):
    """Independent smooth random maps per image and label (see the module docstring)."""

    name = "random"
    normalise = False  # stretched to [0, 1] here

    def raw_maps(
        self,
        x: torch.Tensor,
        indices: tuple[int, ...],
        seed: int = 0,
        generator: torch.Generator | None = None,
        sigma: float | None = None,
        ablate_attention: bool = False,
    ) -> RawMaps:
        """`ablate_attention` is accepted so callers can treat methods alike: the control does not
        depend on the model, with or without its gates."""
        if sigma is None:
            sigma = self.model.stages[-1].reduction / 2.0
        if not sigma > 0:
            raise ConfigError(f"random map sigma must be positive, got {sigma}")
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed))
        shape = (int(x.shape[0]), len(indices), int(x.shape[-2]), int(x.shape[-1]))
        return RawMaps(smooth_noise(shape, float(sigma), generator).to(x.device), "random")
