"""What every explanation method shares: label resolution, input checks, the result type.

A method is a subclass of `Explainer` that overrides one method, `raw_maps`, returning non-negative
maps at the resolution where they are computed (a 7 x 7 feature grid, or the input itself). The base
class upsamples them bilinearly to the input size and, for methods whose scale is arbitrary
(Grad-CAM, Integrated Gradients), divides each map by its maximum so that it lies in [0, 1] with 0
meaning "no evidence" (min-max scaling would instead invent evidence at the minimum).

Nothing here keeps state between calls or writes to the model, so one model can be explained from
several threads at once (two app sessions sharing a cached model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.labels import canonical_label
from cxr_attention.core.models.classifier import AttentionClassifier

LabelRequest = int | str | Sequence[int | str] | None


@dataclass(frozen=True)
class RawMaps:
    """What a method computes before upsampling: maps (B, K, h, w) >= 0 and where they come from."""

    maps: torch.Tensor  # (B, K, h, w), K = labels asked for (or 1 for a label-free map)
    stage: str  # "stage4", "input", "random", ...
    logits: torch.Tensor | None = None  # (B, n_labels) from the same forward pass, if one was run
    order: torch.Tensor | None = None  # like maps: the model's own order of places where maps tie


@dataclass(frozen=True)
class Explanation:
    """Maps for B images and K labels, at the input's resolution.

    `maps` is float32 (B, K, H, W) in [0, 1], detached, on the input's device; `maps[b, k]` belongs
    to `labels[k]`. `scale` (B, K) is what each map was divided by (1 where the method's values
    are already probabilities), so `maps * scale[..., None, None]` recovers the raw values, for a
    scale shared across models. `stage` names the layer the maps come from ("stage4" = the final
    feature map of a 5-stage backbone, "input" for pixel attributions); `map_size` is its (h, w).

    `order` (B, K, H, W), or None, ranks the places where `maps` ties: a class head's map is a
    float32 sigmoid, exactly 1.0 on every place above log-odds 16.6, and its log-odds still tell
    those places apart. Where a map peaks, and which pixels are its top, come from `ranked`.
    """

    maps: torch.Tensor
    labels: tuple[str, ...]
    indices: tuple[int, ...]
    method: str
    stage: str
    map_size: tuple[int, int]
    scale: torch.Tensor
    logits: torch.Tensor | None = None
    order: torch.Tensor | None = None

    def map(self, label: int | str, image: int = 0) -> np.ndarray:
        """One map as float32 numpy (H, W) in [0, 1]; `label` is a name or a position in `labels`."""
        return self._pick(self.maps, label, image)

    def ranked(self, label: int | str, image: int = 0) -> np.ndarray:
        """The map to rank places by (its maximum is where it peaks): `order` where the
        explanation has one, else the map itself. Float32 numpy (H, W), any scale."""
        return self._pick(self.maps if self.order is None else self.order, label, image)

    def _pick(self, maps: torch.Tensor, label: int | str, image: int) -> np.ndarray:
        if isinstance(label, str):
            name = canonical_label(label)
            if name not in self.labels:
                raise ConfigError(
                    f"no map for {label!r}: this explanation holds {list(self.labels)}"
                )
            k = self.labels.index(name)
        else:
            k = int(label)
        return maps[image, k].detach().cpu().numpy().astype(np.float32)


def resolve_labels(model_labels: Sequence[str], labels: LabelRequest) -> tuple[int, ...]:
    """Label indices from None (all), an index, a name (box-file spellings accepted) or a list."""
    if labels is None:
        return tuple(range(len(model_labels)))
    items = [labels] if isinstance(labels, int | str) else list(labels)
    if not items:
        raise ConfigError("no labels asked for: give a label name, an index, or None for all")
    indices = []
    for item in items:
        if isinstance(item, str):
            name = canonical_label(item)
            if name not in model_labels:
                raise ConfigError(
                    f"unknown label {item!r}: this model predicts {', '.join(model_labels)}"
                )
            indices.append(list(model_labels).index(name))
        else:
            index = int(item)
            if not 0 <= index < len(model_labels):
                raise ConfigError(
                    f"label index {index} out of range: this model has {len(model_labels)} labels"
                )
            indices.append(index)
    return tuple(indices)


def check_input(model: AttentionClassifier, x: torch.Tensor) -> None:
    """Refuse an input the model cannot have been meant for, before any hook is registered."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ConfigError(
            "explain needs a normalised float batch (B, C, H, W): build it with "
            "core.data.preprocess.config_input"
        )
    if x.shape[1] != model.config.in_chans:
        raise ConfigError(
            f"input has {x.shape[1]} channels, the model takes {model.config.in_chans}: build it "
            "with core.data.preprocess.config_input"
        )
    if model.training:
        # Batch norm in training mode would mix the images of the batch and change the model.
        raise ConfigError("the model is in training mode: call model.eval() before explaining it")


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (B, K, h, w) -> (B, K, H, W), each cell placed where its features look; a convex
    combination, so [0, 1] stays in [0, 1].

    In a CNN whose convolutions pad symmetrically (timm's backbones), the feature at cell j of a
    stride-s map is centred on input pixel s * j, not on the middle of the block of pixels
    s * j .. s * j + s - 1 that image resizing (`align_corners=False`) would put it at: that would
    draw every map (s - 1) / 2 pixels down and right of what its features saw, 3.5 px for a 16 x 16
    map at 128 px and 15.5 px for a 4 x 4 one (tests/test_map_geometry.py measures the centres).
    Beyond the last cell's centre the map stays at that cell's value.
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    rows = _cell_coordinates(size[0], maps.shape[-2], maps.device)
    cols = _cell_coordinates(size[1], maps.shape[-1], maps.device)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"), dim=-1)
    grid = grid.expand(maps.shape[0], -1, -1, -1).to(maps.dtype)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _cell_coordinates(pixels: int, cells: int, device: torch.device) -> torch.Tensor:
    """Where each of `pixels` output pixels lies on a `cells`-cell axis whose cell j is centred on
    pixel j * pixels / cells, as grid_sample's [-1, 1] coordinates (align_corners=True)."""
    if cells == 1:
        return torch.zeros(pixels, device=device)
    position = torch.arange(pixels, device=device, dtype=torch.float32) * (cells / pixels)
    return position / (cells - 1) * 2.0 - 1.0


def scale_by_max(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Divide each (h, w) map by its maximum; an all-zero map stays zero. Returns maps, scale."""
    scale = maps.amax(dim=(-2, -1))
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return maps / safe[..., None, None], scale


class Explainer:
    """One explanation method. Subclasses set `name`, `normalise` and override `raw_maps`."""

    name: ClassVar[str] = ""
    normalise: ClassVar[bool] = True  # divide by the maximum (False: values already in [0, 1])

    def __init__(self, model: AttentionClassifier) -> None:
        self.model = model

    def raw_maps(self, x: torch.Tensor, indices: tuple[int, ...], **options) -> RawMaps:
        """Non-negative maps (B, K, h, w) for the labels at `indices`; K may be 1 if label-free."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, labels: LabelRequest = None, **options) -> Explanation:
        check_input(self.model, x)
        labels_all = tuple(self.model.config.labels)
        indices = resolve_labels(labels_all, labels)
        raw = self.raw_maps(x, indices, **options)
        maps = raw.maps.detach().float()
        map_size = (int(maps.shape[-2]), int(maps.shape[-1]))
        maps = upsample(maps, (int(x.shape[-2]), int(x.shape[-1])))
        if maps.shape[1] == 1 and len(indices) > 1:
            maps = maps.expand(-1, len(indices), -1, -1)  # a label-free map serves every label
        if self.normalise:
            maps, scale = scale_by_max(maps.clamp_min(0.0))
        else:
            scale = torch.ones(maps.shape[:2], device=maps.device)
        order = None
        if raw.order is not None:
            order = upsample(raw.order.detach().float(), tuple(maps.shape[-2:])).contiguous()
        return Explanation(
            maps=maps.clamp(0.0, 1.0).contiguous(),
            labels=tuple(labels_all[i] for i in indices),
            indices=indices,
            method=self.name,
            stage=raw.stage,
            map_size=map_size,
            scale=scale.detach(),
            logits=None if raw.logits is None else raw.logits.detach(),
            order=order,
        )
