"""Size and cost of each backbone with and without spatial attention (the `models` table)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from core.labels import ALL14
from core.models.classifier import AttentionClassifier, ModelConfig


@dataclass(frozen=True)
class BackboneCost:
    backbone: str
    parameters: int  # baseline classifier, 14 labels
    attention_parameters: int  # added by the gates
    gflops: float  # one 224 px image, baseline; 1 multiply-add = 2 FLOPs
    attention_gflops: float  # extra FLOPs of the gates at 224 px
    feature_maps: dict[int, dict[str, tuple[int, int]]]  # image size -> gate name -> (h, w)

    @property
    def parameter_overhead(self) -> float:
        """Attention parameters as a percentage of the baseline's."""
        return 100.0 * self.attention_parameters / self.parameters


def _flops(model: torch.nn.Module, size: int) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, model.config.in_chans, size, size))
    return counter.get_total_flops() / 1e9


def backbone_cost(
    backbone: str,
    attention_stages: tuple[int, ...] = (-1,),
    sizes: tuple[int, ...] = (224, 512),
) -> BackboneCost:
    """Measure parameters, GFLOPs at 224 px and gated feature-map sizes of one backbone."""
    base = AttentionClassifier(ModelConfig(backbone, ALL14)).eval()
    gated = AttentionClassifier(
        ModelConfig(backbone, ALL14, attention=True, attention_stages=attention_stages)
    ).eval()
    maps: dict[int, dict[str, tuple[int, int]]] = {}
    for size in sizes:
        with torch.no_grad():
            out = gated.forward_with_maps(torch.zeros(1, gated.config.in_chans, size, size))
        maps[size] = {name: tuple(m.shape[-2:]) for name, m in out.maps.items()}
    base_flops = _flops(base, 224)
    return BackboneCost(
        backbone=backbone,
        parameters=sum(p.numel() for p in base.parameters()),
        attention_parameters=gated.attention_parameters(),
        gflops=base_flops,
        attention_gflops=_flops(gated, 224) - base_flops,
        feature_maps=maps,
    )
