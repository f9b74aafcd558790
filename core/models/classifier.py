"""The multi-label classifier: a timm backbone, attention of one kind, a head with one logit per label.

Attention kinds (`ModelConfig.attention_kind`, `ATTENTION_KINDS`):

- ``spatial`` (the paper's, the default): a CBAM spatial gate after each chosen stage, one map per
  gate shared by every label, then global average pooling and a linear head;
- ``cbam``: CBAM's channel attention and then its spatial gate after each chosen stage (the hybrid
  the paper names as future work; `core.models.attention.ChannelSpatialAttention`);
- ``class``: class-specific residual attention (CSRA, `core.models.class_attention`) as the head on
  the final feature map, one map per label; `attention_stages` does not apply.

`output_stride` 16 (timm's dilation of the last stage) doubles the final map's side: 8 x 8 instead
of 4 x 4 at 128 px, fine enough for a lesion of a few percent of the film (measured cost in
benchmarks/README.md).

Attention positions are indices into the backbone's feature stages (timm's `feature_info`), negative
counting from the end: ``(-1,)`` (the default) gates the final feature map — for EfficientNet and
MobileNetV2 that is after the final 1 x 1 convolution of `forward_features`, which timm's
`features_only` mode would leave out — and ``(-2, -1)`` (the `paper` preset) also gates the stage
before it (a 14 x 14 map at 224 px).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import timm
import torch
from torch import nn

from cxr_attention.core.data.lung_prior import LUNG_PRIORS
from cxr_attention.core.errors import ConfigError, PretrainedWeightsError
from cxr_attention.core.models.attention import (
    ACTIVATION_MAP,
    ChannelSpatialAttention,
    GatedStage,
    SpatialAttention,
    activation_wanted,
    gate_call,
    record_map,
)
from cxr_attention.core.models.class_attention import CLASS_MAP, ClassAttentionHead
from cxr_attention.core.models.kinds import ATTENTION_KINDS, OUTPUT_STRIDES, variant_name

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a classifier; stored in every checkpoint."""

    backbone: str  # timm model name, e.g. "resnet101"
    labels: tuple[str, ...]  # one logit per label, in this order
    attention: bool = False  # attention present (of `attention_kind`)
    attention_kind: str = "spatial"  # "spatial" (CBAM's spatial gate, the paper's), "cbam"
    # (channel then spatial), "class" (CSRA head, one map per label); see the module docstring.
    # Checkpoints from before the option hold "spatial" by this default.
    attention_stages: tuple[int, ...] = (-1,)  # feature stages gated (see module docstring)
    attention_kernel: int = 7  # k of the k x k gate convolution
    attention_normalise: bool = False  # gates multiply by map / mean(map) (see attention.py);
    # False (CBAM as published) is what checkpoints from before this option hold
    attention_pool: str = "maxmean"  # what the gate sees: CBAM's channel max and mean, or
    # "learned" two maps from a 1x1 convolution (see attention.py)
    attention_temperature: float = 1.0  # class kind: T of the spatial softmax (99 = max pooling)
    attention_lambda: float = 0.1  # class kind: weight of the attention-pooled term
    output_stride: int = 32  # input pixels per final feature pixel (16: the last stage dilated)
    head_stage: int = -1  # the feature stage the head reads; an earlier one than -1 drops the
    # stages after it (timm's prune_intermediate_layers): a shallower network with a finer map
    image_size: int = 224  # square input side in pixels
    in_chans: int = 3  # grayscale replicated to this many channels
    mean: tuple[float, ...] = IMAGENET_MEAN  # per-channel normalisation of [0, 1] input
    std: tuple[float, ...] = IMAGENET_STD
    drop_rate: float = 0.0  # dropout before the head
    lung_prior: str = "none"  # what of the film it sees: "none", its lung fields alone ("mask")
    # or the box around them ("crop"), as the lung model finds them (core/data/lung_prior.py)
    lung_model: str = ""  # identity of the lung model whose fields it learnt on ("" for none)

    def __post_init__(self) -> None:
        if self.attention_kind not in ATTENTION_KINDS:
            raise ConfigError(
                f"attention kind {self.attention_kind!r}: choose one of {', '.join(ATTENTION_KINDS)}"
            )
        if self.lung_prior not in LUNG_PRIORS:
            raise ConfigError(
                f"lung prior {self.lung_prior!r}: choose one of {', '.join(LUNG_PRIORS)}"
            )
        if self.output_stride not in OUTPUT_STRIDES:
            raise ConfigError(
                f"output stride {self.output_stride}: choose one of "
                f"{', '.join(map(str, OUTPUT_STRIDES))}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config fields: {', '.join(unknown)}")
        tuples = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
        return cls(**{**data, **tuples})

    @property
    def kind(self) -> str | None:
        """The attention kind in use, None for a baseline."""
        return self.attention_kind if self.attention else None

    @property
    def variant(self) -> str:
        """A short run-style name: ``resnet101``, ``resnet101+attention`` (the paper's spatial
        gate), ``resnet101+cbam``, ``resnet101+class``; see `variant_name`."""
        return variant_name(self.backbone, self.kind)


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, n_labels), raw (apply a sigmoid for probabilities)
    maps: dict[str, torch.Tensor]  # gate name -> (B, 1, h, w) in [0, 1]; "class" -> (B, L, h, w)
    # per-label maps of a class-specific head; empty without attention
    log_odds: dict[str, torch.Tensor] = {}  # "class" -> (B, L, h, w): the class maps' log-odds,
    # their order of places where the float32 sigmoid ties at 1.0 (`record_map`)


@dataclass
class StageInfo:
    index: int  # position in feature_info
    module: str  # dotted module name inside the timm model
    channels: int
    reduction: int  # input pixels per feature pixel
    name: str = field(default="")


def check_backbone_name(name: str) -> None:
    """Refuse a name timm does not know, before anything is built or fetched for it."""
    if name not in timm.list_models():
        # Paper names first; a typo should not hide behind a 1,000-line list.
        raise ConfigError(
            f"unknown backbone {name!r}: use one of resnet101, efficientnet_b0, efficientnet_b3, "
            "mobilenetv2_100, or any name from `timm.list_models()`"
        )


def missing_weights_error(weights: Path, name: str | None) -> PretrainedWeightsError:
    """The one-line error for a --pretrained file that is not there (`name`: the backbone, when
    known)."""
    of = f"of {name} " if name else ""
    return PretrainedWeightsError(
        f"pretrained weights not found: {weights}; --pretrained takes a run folder or checkpoint "
        f"of cxr-attention, or timm weights: download the ImageNet weights {of}(timm's "
        "model.safetensors or a .pth state_dict) on a connected machine, copy the file here and "
        "pass its path with --pretrained (or use --pretrained imagenet there)"
    )


def create_backbone(
    name: str, in_chans: int = 3, pretrained_file: str | None = None, output_stride: int = 32
) -> nn.Module:
    """A timm model without its head; offline, with optional weights from a local file (hub
    weights arrive here as a file too: see core.models.imagenet). `output_stride` below 32
    dilates the last stages instead of striding (same weights, finer final map)."""
    check_backbone_name(name)
    kwargs: dict = {"num_classes": 0, "global_pool": "", "in_chans": in_chans}
    if output_stride != 32:
        kwargs["output_stride"] = output_stride
    if pretrained_file is None:
        return _create(name, kwargs)
    weights = Path(pretrained_file).expanduser()
    if not weights.is_file():
        # Never fall through to a hub download: offline it retries for most of a minute.
        raise missing_weights_error(weights, name)
    kwargs |= {"pretrained": True, "pretrained_cfg_overlay": {"file": str(weights)}}
    try:
        return _create(name, kwargs)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise PretrainedWeightsError(
            f"pretrained weights {weights} do not fit {name}: {first}"
        ) from None


def _create(name: str, kwargs: dict) -> nn.Module:
    try:
        return timm.create_model(name, **kwargs)
    except (TypeError, AssertionError) as exc:
        # Models without the option refuse the keyword (TypeError); some take it and assert 32
        # (timm's GhostNet, VGG).
        if "output_stride" not in kwargs:
            raise
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "not supported"
        raise ConfigError(
            f"{name} cannot change its output stride ({reason}): leave --output-stride at 32"
        ) from None


def feature_stages(backbone: nn.Module) -> list[StageInfo]:
    """The feature stages timm reports for a backbone, deepest last."""
    info = getattr(backbone, "feature_info", None)
    if not info:
        raise ConfigError(
            f"{type(backbone).__name__} does not report feature stages; attention cannot be placed"
        )
    stages = []
    for i, entry in enumerate(info):
        stages.append(
            StageInfo(i, entry["module"], entry["num_chs"], entry["reduction"], f"stage{i}")
        )
    return stages


def _replace_submodule(root: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


class AttentionClassifier(nn.Module):
    """Backbone -> (gates) -> global average pooling -> linear head, one logit per label; or
    backbone -> class-specific attention head.

    `forward` returns logits (B, n_labels); `forward_with_maps` returns the logits and every
    attention map in one call; `ablate_attention=True` runs an attention-trained model with every
    gate set to 1, or a class-specific head without its attention term (a teaching switch: it is
    *not* the separately trained baseline).
    """

    def __init__(self, config: ModelConfig, pretrained_file: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = create_backbone(
            config.backbone, config.in_chans, pretrained_file, config.output_stride
        )
        self.stages = feature_stages(self.backbone)
        if config.head_stage != -1:
            self.stages = self._truncate(config.head_stage)
        self.final_attention: nn.Module | None = None
        self.gate_names: list[str] = []
        self.num_features = self.backbone.num_features
        self.dropout = nn.Dropout(config.drop_rate)
        n_labels = len(config.labels)
        if config.kind == "class":
            self.head: nn.Module = ClassAttentionHead(
                self.num_features, n_labels, config.attention_temperature, config.attention_lambda
            )
            self.gate_names.append(CLASS_MAP)
        else:
            if config.attention:
                self._insert_gates()
            self.head = nn.Linear(self.num_features, n_labels)

    def _truncate(self, head_stage: int) -> list[StageInfo]:
        """End the backbone at stage `head_stage`; the stages that remain."""
        n = len(self.stages)
        keep = head_stage % n if -n <= head_stage < n else _bad_stage(head_stage, n, "head stage")
        if keep < n - 1:
            prune = getattr(self.backbone, "prune_intermediate_layers", None)
            if prune is None:
                raise ConfigError(
                    f"{self.config.backbone} cannot end at an earlier stage: leave --head-stage at -1"
                )
            prune([keep], prune_head=True)
        return self.stages[: keep + 1]

    def _insert_gates(self) -> None:
        n = len(self.stages)
        indices = sorted(
            {i % n if -n <= i < n else _bad_stage(i, n) for i in self.config.attention_stages}
        )
        for i in indices:
            stage = self.stages[i]
            channels = self.backbone.num_features if i == n - 1 else stage.channels
            gate: nn.Module = SpatialAttention(
                self.config.attention_kernel,
                stage.name,
                self.config.attention_normalise,
                self.config.attention_pool,
                channels,
            )
            if self.config.attention_kind == "cbam":
                gate = ChannelSpatialAttention(channels, gate)
            if i == n - 1:
                # The final gate sees the full forward_features output (after any 1x1 head conv).
                self.final_attention = gate
            else:
                inner = self.backbone.get_submodule(stage.module)
                _replace_submodule(self.backbone, stage.module, GatedStage(inner, gate))
            self.gate_names.append(stage.name)

    @property
    def has_attention(self) -> bool:
        return bool(self.gate_names)

    @property
    def class_specific(self) -> bool:
        """Whether the attention maps are per label (a CSRA head) rather than one for all."""
        return isinstance(self.head, ClassAttentionHead)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final (gated) feature map, (B, num_features, h, w)."""
        x = self.backbone.forward_features(x)
        if self.final_attention is not None:
            x = self.final_attention(x)
        return x

    def head_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (B, L), float32, from the final feature map (B, C, h, w).

        The head runs in float32 even under autocast (a few thousand multiply-adds): bfloat16
        keeps 8 bits of mantissa, so its logits would be rounded to steps of 1/64 near a logit of
        -3, tying validation scores (AUC, thresholds, temperatures read them), and the pooling
        and a class-specific head's softmax over places would sum in that precision too.
        """
        with _autocast_off(features.device):
            features = features.float()
            if self.class_specific:
                return self.head(self.dropout(features))
            if activation_wanted():
                activation = torch.einsum("bchw,lc->blhw", features, self.head.weight)
                bias = self.head.bias.view(1, -1, 1, 1)
                record_map(ACTIVATION_MAP, torch.sigmoid(activation + bias))
            return self.head(self.dropout(features.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.features(x))

    def forward_with_maps(self, x: torch.Tensor, ablate_attention: bool = False) -> ModelOutput:
        """Logits and every attention map from one forward pass."""
        if ablate_attention and not self.has_attention:
            raise ConfigError("this model has no attention to ablate (it is a baseline model)")
        with gate_call(ablate=ablate_attention) as call:
            logits = self(x)
        return ModelOutput(logits, dict(call.maps), dict(call.log_odds))

    def attention_parameters(self) -> int:
        """Number of parameters in the attention modules (a class-specific head counts whole,
        though it replaces a linear head of as many weights)."""
        kinds = (SpatialAttention, ChannelSpatialAttention, ClassAttentionHead)
        params = {id(p): p for m in self.modules() if isinstance(m, kinds) for p in m.parameters()}
        return sum(p.numel() for p in params.values())


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """Float32 inside an autocast region; a no-op where autocast does not exist (the meta device
    that `core.models.summary` counts shapes on)."""
    if not torch.amp.is_autocast_available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)


def _bad_stage(i: int, n: int, what: str = "attention stage") -> int:
    raise ConfigError(f"{what} {i} does not exist: this backbone has stages 0..{n - 1}")
