"""Class-specific residual attention (CSRA; Zhu and Wu, "Residual Attention: A Simple but Effective
Method for Multi-Label Recognition", ICCV 2021; reference code Kevinz-code/CSRA, pipeline/csra.py).

A head in place of global average pooling and the linear layer. A bias-free 1 x 1 convolution gives
each label i a score at each place j of the final feature map x (C, h, w), normalised by the length
of that label's weight vector m_i:

    s_j^i = m_i . x_j / |m_i|
    logit_i = mean_j s_j^i + lambda * sum_j softmax_j(T s^i)_j s_j^i + b_i

The first term is global average pooling of the class score maps (what a linear head on pooled
features computes, up to the normalisation); the second pools them with a per-label spatial softmax
of temperature T (T -> infinity is max pooling; the reference code writes T = 99 for that). The bias
b_i is our addition, so that the head can start at each label's prior (`start_head_at_prior`).
CSRA's single-head setting for Pascal VOC is T = 1, lambda = 0.1; these are the defaults here.

Its attention map for label i is where that label's evidence lies: sigmoid(s^i + b_i) at each place,
the probability of label i if the head saw that place alone (in [0, 1], on the same scale in every
film and every model; its maximum is where the softmax attention peaks). One map per label, unlike
the CBAM gate's one map for all labels. 28,672 parameters for ResNet-101's 2,048 features and 14
labels; 17,934 for MobileNetV2's 1,280 (the linear head it replaces has as many, less the biases).
"""

from __future__ import annotations

import torch
from torch import nn

from cxr_attention.core.models.attention import record_map

CLASS_MAP = "class"  # the name its maps carry in `ModelOutput.maps`


class ClassAttentionHead(nn.Module):
    """Features (B, C, h, w) -> logits (B, L); records its per-label maps (B, L, h, w) in [0, 1]."""

    def __init__(
        self, channels: int, n_labels: int, temperature: float = 1.0, lam: float = 0.1
    ) -> None:
        super().__init__()
        if not temperature > 0 or lam < 0:
            raise ValueError(f"temperature must be > 0 and lambda >= 0, got {temperature}, {lam}")
        self.temperature = float(temperature)
        self.lam = float(lam)
        self.classifier = nn.Conv2d(channels, n_labels, kernel_size=1, bias=False)
        self.bias = nn.Parameter(torch.zeros(n_labels))
        nn.init.normal_(self.classifier.weight, std=0.01)

    def score_maps(self, x: torch.Tensor) -> torch.Tensor:
        """s^i_j, (B, L, h, w): each label's score at each place, by its normalised weights."""
        norm = self.classifier.weight.flatten(1).norm(dim=1).clamp_min(1e-12)
        return self.classifier(x) / norm.view(1, -1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.score_maps(x)
        flat = scores.flatten(2)  # (B, L, h * w)
        base = flat.mean(dim=2)
        if self.temperature >= 99:  # the reference code's spelling of max pooling
            pooled = flat.amax(dim=2)
        else:
            pooled = (flat * torch.softmax(self.temperature * flat, dim=2)).sum(dim=2)
        # Ablated (the app's "attention off"): the head without its attention term, which is
        # global average pooling of the score maps.
        log_odds = scores + self.bias.view(1, -1, 1, 1)
        if record_map(CLASS_MAP, torch.sigmoid(log_odds), log_odds):
            return base + self.bias
        return base + self.lam * pooled + self.bias
