"""The model's own attention, read from the forward pass: a CBAM gate's sigmoid map, or the
per-label maps of a class-specific head.

A gate's map does not depend on the label (one gate serves all labels), so every label asked for
gets the same map. A class-specific head (CSRA) has one map per label: sigmoid(s^i + b_i), the
probability of label i from each place alone (core.models.class_attention). Either way the values
are the model's own (in [0, 1], not rescaled): 0.5 everywhere is a gate that has not learned where
to look, which rescaling would hide. A class map also carries its log-odds as its order of places
(`Explanation.order`): on a film the head is sure of, its sigmoid is exactly 1.0 on several places.
"""

from __future__ import annotations

import torch

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.base import Explainer, RawMaps
from cxr_attention.core.models.classifier import AttentionClassifier


def resolve_gate(model: AttentionClassifier, stage: str | None) -> str:
    """The gate to read: `stage` ("stage3", "stage4", ...) or, by default, the deepest gate."""
    if not model.has_attention:
        raise ConfigError(
            f"attention maps need an attention model and {model.config.backbone} here is a "
            "baseline: use the gradcam or integrated_gradients method"
        )
    if stage is None:
        return model.gate_names[-1]
    if stage not in model.gate_names:
        raise ConfigError(
            f"no attention gate after {stage!r}: this model has gates {', '.join(model.gate_names)}"
        )
    return stage


class AttentionMap(Explainer):
    """The attention map of one gate (default: the final one), or a class head's per-label maps."""

    name = "attention"
    normalise = False  # a sigmoid gate: its values already lie in [0, 1] and mean something

    def raw_maps(
        self,
        x: torch.Tensor,
        indices: tuple[int, ...],
        stage: str | None = None,
        ablate_attention: bool = False,
    ) -> RawMaps:
        """`ablate_attention`: the gates still compute their maps but pass features unchanged, so
        a later gate sees what the earlier ones would have let through ungated."""
        gate = resolve_gate(self.model, stage)
        with torch.no_grad():
            out = self.model.forward_with_maps(x, ablate_attention=ablate_attention)
        maps, order = out.maps[gate], out.log_odds.get(gate)
        if maps.shape[1] > 1:  # one map per label: keep those asked for
            maps = maps[:, list(indices)]
            order = None if order is None else order[:, list(indices)]
        return RawMaps(maps, gate, out.logits, order)
