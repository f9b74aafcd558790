"""CBAM spatial attention (Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018).

The gate pools the features across channels into two maps (channel-wise max and mean, in that order,
as in the reference code Jongchan/attention-module; timm's variant stacks mean first, so weights are
not interchangeable), runs a k x k convolution without bias to one channel, batch-normalises it and
squashes it with a sigmoid. The features are multiplied by that map, which lies in [0, 1] and has the
spatial size of the features (7 x 7 after the last stage of a 224 px input).

Batch-norm initialisation: the weight (gamma) starts at 0, as in the reference code, so that at the
start of training the gate is exactly 0.5 everywhere. A uniform gate only rescales the features, which
leaves a pretrained backbone's spatial information intact while the convolution learns where to look;
a random initial gate would instead blank random regions of every image before any learning.

Mean-normalised gates (`normalise=True`, our addition; new runs use it, `ModelConfig.
attention_normalise`): the features are multiplied by map / mean(map) instead of the map. The map
itself is the same CBAM map in [0, 1]; only what it does changes. A plain gate followed by global
average pooling is rewarded for scaling the whole feature map (a uniform gate works as a gain on
every logit), and in a multi-label task where most labels are negative in most films it learns to
amplify whatever looks normal: measured on the phantom, its maxima fell on the lesions less often
than a random map's (docs/attention-diagnosis.md). With the mean divided out the gate can only
move emphasis between places; before the final pooling it is exactly attention pooling,
sum(map x features) / sum(map) (as in attention-based multiple-instance learning, Ilse et al.,
ICML 2018). A uniform map leaves the features unchanged, so training starts from the baseline.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class _GateCall:
    """What the gates do during one forward call: collect their maps, or stand aside."""

    ablate: bool = False
    activation: bool = False  # a linear head records its class activation maps too
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    log_odds: dict[str, torch.Tensor] = field(default_factory=dict)  # maps that are sigmoids


# Per thread (and per asyncio task): two app sessions sharing one model never see each other's maps.
_CURRENT_CALL: contextvars.ContextVar[_GateCall | None] = contextvars.ContextVar(
    "cxr_attention_gate_call", default=None
)


def record_map(name: str, attention: torch.Tensor, log_odds: torch.Tensor | None = None) -> bool:
    """Hand a map to the `gate_call` in progress, if any; True when that call ablates attention.

    The map handed out is float32 whatever autocast computed it in (numpy, the app and the
    timeline files cannot take bfloat16); the gate itself goes on in the autocast dtype.
    `log_odds`, for a map that is sigmoid(log_odds), keeps the order of places the sigmoid loses:
    in float32 it rounds to exactly 1.0 above log-odds 16.6, and a class head's strongest places
    reach 20-60 on films it is sure of, all tied at 1.0."""
    call = _CURRENT_CALL.get()
    if call is None:
        return False
    call.maps[name] = attention.float()
    if log_odds is not None:
        call.log_odds[name] = log_odds.float()
    return call.ablate


# The key of a linear head's class activation maps (B, L, h, w) in a `gate_call(activation=True)`:
# sigmoid(sum_c W_lc A_c[i, j] + b_l) over the final features A, the probability the head gives
# label l for a film that looked everywhere like place (i, j) (a class-specific head's maps are
# the same, `CLASS_MAP`). Its order of places is that of label l's raw-logit Grad-CAM at the final
# stage, ReLU(sum_c W_lc A_c) up to a positive factor (its gradient weights are W_lc / hw), so the
# two share their peak wherever Grad-CAM has one. Computed in the forward pass, so a training term
# can hold a baseline's Grad-CAM (core/training/lung_term.py); unlike ReLU it never turns flat.
ACTIVATION_MAP = "activation"


def activation_wanted() -> bool:
    """Whether the `gate_call` in progress asks a linear head for its class activation maps."""
    call = _CURRENT_CALL.get()
    return call is not None and call.activation


@contextlib.contextmanager
def gate_call(ablate: bool = False, activation: bool = False) -> Iterator[_GateCall]:
    """Within this block, every `SpatialAttention` records its map; with `ablate` its gate is 1;
    with `activation` a linear head records its class activation maps (`ACTIVATION_MAP`)."""
    call = _GateCall(ablate=ablate, activation=activation)
    token = _CURRENT_CALL.set(call)
    try:
        yield call
    finally:
        _CURRENT_CALL.reset(token)


class ChannelPool(nn.Module):
    """Stack the channel-wise max and mean: (B, C, H, W) -> (B, 2, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)), dim=1)


def learned_pool(channels: int) -> nn.Conv2d:
    """Two maps from a learned 1x1 convolution over the channels: (B, C, H, W) -> (B, 2, H, W)."""
    return nn.Conv2d(channels, 2, kernel_size=1)


POOLS = ("maxmean", "learned")


class SpatialAttention(nn.Module):
    """The CBAM spatial gate: features (B, C, H, W) -> features * map, map (B, 1, H, W) in [0, 1].

    `name` says where the gate sits (for example ``"stage4"``) and keys the map in the output of
    `AttentionClassifier.forward_with_maps`. `pool` is "maxmean" (CBAM: channel max and mean) or
    "learned" (a 1x1 convolution over the `channels` feature channels; see the module docstring).
    """

    def __init__(
        self,
        kernel_size: int = 7,
        name: str = "final",
        normalise: bool = False,
        pool: str = "maxmean",
        channels: int | None = None,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if pool not in POOLS or (pool == "learned" and not channels):
            raise ValueError(f"pool must be one of {POOLS} (learned needs channels), got {pool!r}")
        self.name = name
        self.normalise = normalise
        self.pool = ChannelPool() if pool == "maxmean" else learned_pool(channels)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)
        self.gate = nn.Sigmoid()
        nn.init.zeros_(self.bn.weight)  # uniform 0.5 gate at the start; see the module docstring

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The map alone, (B, 1, H, W) in [0, 1]."""
        return self.gate(self.bn(self.conv(self.pool(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.attention_map(x)
        if record_map(self.name, attention):
            return x
        if self.normalise:
            # Divide by the map's mean over the image: the gate can only move emphasis from one
            # place to another, never rescale the whole feature map (see the module docstring).
            attention = attention / attention.mean(dim=(2, 3), keepdim=True).clamp_min(1e-6)
        return x * attention


class ChannelSpatialAttention(nn.Module):
    """CBAM as published: channel attention, then the spatial gate (Woo et al. 2018, Fig. 1).

    The channel half is timm's `ChannelAttn` (a shared two-layer MLP over the spatially average- and
    max-pooled features, reduction 16, sigmoid); the spatial half is `SpatialAttention` above
    rather than timm's `SpatialAttn`, so that its map is exposed like every other gate's and keeps
    the reference code's pooling order and uniform start. Ablation bypasses both halves.
    """

    def __init__(self, channels: int, spatial: SpatialAttention) -> None:
        super().__init__()
        from timm.layers.cbam import ChannelAttn

        self.channel = ChannelAttn(channels)
        self.spatial = spatial

    @property
    def name(self) -> str:
        return self.spatial.name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        call = _CURRENT_CALL.get()
        if call is None or not call.ablate:
            x = self.channel(x)
        return self.spatial(x)


class GatedStage(nn.Module):
    """A backbone stage followed by a spatial gate; stands in for the stage inside the backbone."""

    def __init__(self, stage: nn.Module, attention: nn.Module) -> None:
        super().__init__()
        self.stage = stage
        self.attention = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.stage(x))
