"""Size and cost of each backbone with each attention kind and output stride (the `models` table).

Every variant is built on PyTorch's meta device: shapes, parameter counts and FLOPs without
allocating or initialising a weight, so the whole table takes seconds even for ResNet-101.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.models.kinds import ATTENTION_KINDS

FINAL_MAP = "final"  # a baseline's map name: its final feature map (what Grad-CAM reads)
FLOPS_SIZE = 224  # px side of the image GFLOPs are counted for
MAP_SIZES = (224, 128)  # px sides at which map sizes are reported (the paper's and the demo's)
STRIDES = (32, 16)  # output strides compared: timm's default and the last stage dilated


@dataclass(frozen=True)
class VariantCost:
    """One classifier (backbone, attention kind or None, output stride), 14 labels."""

    kind: str | None  # attention kind, None for the baseline
    output_stride: int  # input pixels per final feature pixel
    parameters: int  # the whole classifier
    attention_parameters: int  # inside its attention modules (a class head counts whole)
    gflops: float  # one FLOPS_SIZE px image; 1 multiply-add = 2 FLOPs
    maps: dict[int, dict[str, tuple[int, int]]]  # image px -> map name -> (h, w); a baseline's
    # final feature map under FINAL_MAP


@dataclass(frozen=True)
class BackboneCost:
    """Every variant of one backbone, keyed by (kind, output stride); a stride the backbone
    cannot take (timm refuses to dilate it) is absent."""

    backbone: str
    variants: dict[tuple[str | None, int], VariantCost]

    def variant(self, kind: str | None, output_stride: int = 32) -> VariantCost | None:
        return self.variants.get((kind, output_stride))

    @property
    def baseline(self) -> VariantCost:
        return self.variant(None, 32)

    def parameter_overhead(self, kind: str | None) -> float:
        """Parameters a kind adds to the baseline, in percent (0 for a class head, which takes
        the place of a linear head of as many weights)."""
        base = self.baseline.parameters
        return 100.0 * (self.variants[(kind, 32)].parameters - base) / base

    def attention_gflops(self, kind: str | None, output_stride: int = 32) -> float:
        """GFLOPs a kind adds to the baseline of the same output stride, at FLOPS_SIZE px."""
        ours, base = self.variants[(kind, output_stride)], self.variants[(None, output_stride)]
        return ours.gflops - base.gflops


def _flops(model: AttentionClassifier, size: int) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, model.config.in_chans, size, size, device="meta"))
    return counter.get_total_flops() / 1e9


def _map_sizes(model: AttentionClassifier, size: int) -> dict[str, tuple[int, int]]:
    x = torch.zeros(1, model.config.in_chans, size, size, device="meta")
    with torch.no_grad():
        if not model.has_attention:
            return {FINAL_MAP: tuple(model.features(x).shape[-2:])}
        return {name: tuple(m.shape[-2:]) for name, m in model.forward_with_maps(x).maps.items()}


def variant_cost(
    backbone: str,
    kind: str | None,
    output_stride: int = 32,
    attention_stages: tuple[int, ...] = (-1,),
    sizes: Sequence[int] = MAP_SIZES,
) -> VariantCost:
    """Parameters, GFLOPs at FLOPS_SIZE px and map sizes at each of `sizes` px of one variant."""
    config = ModelConfig(
        backbone,
        ALL14,
        attention=kind is not None,
        attention_kind=kind or "spatial",
        attention_stages=attention_stages,
        output_stride=output_stride,
    )
    with torch.device("meta"):
        model = AttentionClassifier(config).eval()
    return VariantCost(
        kind=kind,
        output_stride=output_stride,
        parameters=sum(p.numel() for p in model.parameters()),
        attention_parameters=model.attention_parameters(),
        gflops=_flops(model, FLOPS_SIZE),
        maps={size: _map_sizes(model, size) for size in sizes},
    )


def backbone_cost(
    backbone: str,
    attention_stages: tuple[int, ...] = (-1,),
    kinds: Sequence[str] = ATTENTION_KINDS,
    strides: Sequence[int] = STRIDES,
    sizes: Sequence[int] = MAP_SIZES,
) -> BackboneCost:
    """The baseline and each attention kind of one backbone, at each output stride (32 always,
    whatever `strides` says: the overheads are measured against it)."""
    variants = {}
    for stride in dict.fromkeys((32, *strides)):
        for kind in (None, *kinds):
            try:
                variants[(kind, stride)] = variant_cost(
                    backbone, kind, stride, attention_stages, sizes
                )
            except ConfigError:
                if stride == 32:
                    raise
                break  # this backbone cannot change its stride: no variant at this one
    return BackboneCost(backbone, variants)
