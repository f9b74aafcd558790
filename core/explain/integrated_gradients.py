"""Integrated Gradients (Sundararajan et al., ICML 2017) through captum, per pixel.

Attributions of the label's RAW LOGIT along the straight path from a black image to the input,
summed over input channels (the grayscale radiograph is replicated to C channels). The baseline is
black in image space: the normalised value of 0, i.e. (0 - mean) / std per channel, not a tensor of
zeros (which would be mid-grey after normalisation).

Memory stays bounded: images are attributed one at a time and captum evaluates the `steps` path
points in chunks of `internal_batch_size` forward passes.
"""

from __future__ import annotations

import torch

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.base import Explainer, RawMaps
from cxr_attention.core.models.attention import gate_call
from cxr_attention.core.models.classifier import AttentionClassifier

SIGNS = ("positive", "absolute")


def black_baseline(model: AttentionClassifier, x: torch.Tensor) -> torch.Tensor:
    """A black image in the model's normalised space, shaped like `x`."""
    config = model.config
    mean = torch.tensor(config.mean[: config.in_chans], dtype=x.dtype, device=x.device)
    std = torch.tensor(config.std[: config.in_chans], dtype=x.dtype, device=x.device)
    return ((0.0 - mean) / std).view(1, -1, 1, 1).expand_as(x).contiguous()


class IntegratedGradientsMap(Explainer):
    """Positive (or absolute) channel-summed Integrated Gradients of each label's logit."""

    name = "integrated_gradients"

    def raw_maps(
        self,
        x: torch.Tensor,
        indices: tuple[int, ...],
        steps: int = 32,
        internal_batch_size: int = 16,
        sign: str = "positive",
        ablate_attention: bool = False,
    ) -> RawMaps:
        if steps < 2 or internal_batch_size < 1:
            raise ConfigError(
                f"integrated gradients needs steps >= 2 and internal_batch_size >= 1, got "
                f"{steps} and {internal_batch_size}"
            )
        if sign not in SIGNS:
            raise ConfigError(f"unknown sign {sign!r}: choose one of {', '.join(SIGNS)}")
        if ablate_attention and not self.model.has_attention:
            raise ConfigError("this model has no attention to switch off (it is a baseline model)")
        # imported here: captum (and the matplotlib it brings) adds 1.4-1.7 s to every command
        # and app start that never asks for Integrated Gradients
        from captum.attr import IntegratedGradients

        ig = IntegratedGradients(self.model)
        maps = torch.empty((x.shape[0], len(indices), *x.shape[-2:]), device=x.device)
        with gate_call(ablate=ablate_attention), torch.enable_grad():
            for b in range(x.shape[0]):
                image = x[b : b + 1].detach()
                baseline = black_baseline(self.model, image)
                for k, index in enumerate(indices):
                    attribution = ig.attribute(
                        image,
                        baselines=baseline,
                        target=index,
                        n_steps=steps,
                        internal_batch_size=internal_batch_size,
                    )
                    summed = attribution.detach().sum(dim=1)[0]
                    maps[b, k] = summed.abs() if sign == "absolute" else summed.clamp_min(0.0)
        with torch.no_grad(), gate_call(ablate=ablate_attention):
            logits = self.model(x)
        return RawMaps(maps, "input", logits)
