"""Evidence kept inside the lungs: a training term on the share of a model's own maps outside them.

"Right for the right reasons" (Ross, Hughes and Doshi-Velez, IJCAI 2017) penalises a model's input
gradients outside the region that should explain its answer; guided attention (Li et al., CVPR
2018) does the same to attention maps. Here the region is the film's lung fields and the maps are
the model's own: each class-specific map of a finding the film has, every gate map, and for a
linear head (a baseline, or the paper's gate) the class activation map of each finding the film
has. That map is drawn as the probability the head gives each place alone, sigmoid(w . A_ij + b),
as a class-specific head's maps are; its places rank as that finding's Grad-CAM at the final stage
ranks them (for global average pooling and a linear layer, Grad-CAM's weights are the layer's
weights over h w: Zhou et al.'s CAM, CVPR 2016), so a baseline's Grad-CAM is held in the same
forward pass, without a second backward. Each map is drawn on the film's pixels as the product
draws it (`core.explain.base.upsample`), and the term is the share of its mass that lies outside
the lung fields, averaged over the maps counted: 0 when every map keeps its evidence inside, 1 when
it all lies elsewhere. A film without a lung field (the lung model refused it) adds nothing.

Why not Grad-CAM itself, ReLU(w . A_ij): a map that is zero everywhere has no mass outside, so a
model could meet the term by making its evidence negative at every place, a flat Grad-CAM that
points nowhere. The zoo's baselines trained that way (2026-12-07) had a flat Pneumonia Grad-CAM
on 41-47 % of the adult films with tuberculosis. The sigmoid keeps a flat map costly (its mass
lies outside in the share the field leaves) and rewards evidence raised inside.
"""

from __future__ import annotations

import torch

from cxr_attention.core.explain.base import upsample
from cxr_attention.core.models.attention import ACTIVATION_MAP
from cxr_attention.core.models.class_attention import CLASS_MAP


def outside_share(maps: torch.Tensor, lungs: torch.Tensor) -> torch.Tensor:
    """Share of each map's mass outside the lungs: maps (B, K, h, w) >= 0, lungs (B, 1, S, S) in
    {0, 1} -> (B, K)."""
    drawn = upsample(maps.float(), tuple(lungs.shape[-2:]))
    total = drawn.sum(dim=(-2, -1)).clamp_min(1e-6)
    return (drawn * (1.0 - lungs)).sum(dim=(-2, -1)) / total


def lung_term(
    maps: dict[str, torch.Tensor], lungs: torch.Tensor, findings: torch.Tensor
) -> torch.Tensor:
    """The mean outside share of the class maps and class activation maps of present findings and
    of every gate map.

    maps: `gate_call` maps of one forward pass ({gate: (B, 1, h, w)}, CLASS_MAP and ACTIVATION_MAP:
    (B, L, h, w));
    lungs: (B, 1, S, S) lung fields in the films' frame; findings: (B, L) 0/1 targets.
    """
    has_lungs = (lungs.flatten(1).amax(dim=1) > 0).float()  # (B,)
    shares, weights = [], []
    for name, m in maps.items():
        share = outside_share(m, lungs)
        if name in (CLASS_MAP, ACTIVATION_MAP):
            weight = findings.float() * has_lungs[:, None]
        else:
            weight = has_lungs[:, None].expand_as(share)
        shares.append((share * weight).sum())
        weights.append(weight.sum())
    if not shares:
        return lungs.new_zeros(())
    return torch.stack(shares).sum() / torch.stack(weights).sum().clamp_min(1.0)
