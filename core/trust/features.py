"""Logits and pooled features of every stage in one forward pass: what the OOD score reads.

`AttentionClassifier.forward` is `head_logits(features(x))`. `pooled_forward` runs exactly that,
keeps the pooled final vector ("final", after any final gate) and, through
forward hooks held only for the pass, the spatial mean of each feature stage's output ("stage0",
...; after a gate where one sits). Early stages describe texture and contrast, the final one what
the head reads: films unlike the training set show up in one or the other.

It also keeps the input's layout ("input"): the normalised film averaged over an 8 x 8 grid of
cells, where the body, the lungs and the borders lie. That needs no training, so it tells a real
film from a phantom one even when a short run's features do not yet (README, "Out-of-distribution
warning and calibration").

The hooks belong to the calling thread, as in `core.explain.hooks`: another thread's forward pass
through the same shared model (another app session) goes through untouched.

The model is read through its feature API alone (`FeatureModel`): core.models sits above this
package (a checkpoint holds the OOD description and the temperatures), so nothing here imports it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.errors import DatasetError

FINAL = "final"
INPUT = "input"
LAYOUT_CELLS = 8  # the input's layout: its mean over LAYOUT_CELLS x LAYOUT_CELLS cells


class FeatureModel(Protocol):
    """What the trust code reads of a classifier (`core.models.classifier.AttentionClassifier`)."""

    config: Any  # its ModelConfig: labels, normalisation, input channels
    stages: Sequence[Any]  # feature stages, each with .name and .module (a path in .backbone)
    backbone: torch.nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The final feature map (B, C, h, w), after any final gate."""
        ...

    def head_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Raw logits (B, L) of that map."""
        ...

    def eval(self) -> Any: ...


@dataclass(frozen=True)
class PooledOutputs:
    """One batch's raw logits (B, L) and pooled features {layer name: (B, C_layer)}."""

    logits: torch.Tensor
    features: dict[str, torch.Tensor]


@contextlib.contextmanager
def _stage_means(model: FeatureModel) -> Iterator[dict[str, torch.Tensor]]:
    """Within this block, each stage's output mean over (h, w) lands in the yielded dict."""
    owner, found = threading.get_ident(), {}

    def tap(name: str):
        def hook(_module, _inputs, output: torch.Tensor) -> None:
            if threading.get_ident() == owner:
                found[name] = output.float().mean(dim=(2, 3))

        return hook

    handles = [
        model.backbone.get_submodule(stage.module).register_forward_hook(tap(stage.name))
        for stage in model.stages
    ]
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def input_layout(x: torch.Tensor) -> torch.Tensor:
    """The model input (B, C, S, S) averaged over channels and LAYOUT_CELLS^2 cells: (B, cells^2)."""
    grey = x.float().mean(dim=1, keepdim=True)
    return torch.nn.functional.adaptive_avg_pool2d(grey, LAYOUT_CELLS).flatten(1)


def pooled_forward(model: FeatureModel, x: torch.Tensor) -> PooledOutputs:
    """Raw logits, the input's layout and pooled features of every stage and of the final (gated)
    map, in one pass."""
    with _stage_means(model) as stages:
        features = model.features(x)
        pooled = features.float().mean(dim=(2, 3))
        logits = model.head_logits(features).float()
    return PooledOutputs(logits, {INPUT: input_layout(x), **stages, FINAL: pooled})


@dataclass(frozen=True)
class SplitOutputs:
    """A model's outputs over a split, rows in dataset order (each image once)."""

    logits: np.ndarray  # float32 (n, L), raw
    features: dict[str, np.ndarray]  # layer name -> float32 (n, C_layer)
    targets: np.ndarray  # float32 (n, L), 0/1


@torch.inference_mode()
def collect_outputs(
    model: FeatureModel,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    device: torch.device | str = "cpu",
) -> SplitOutputs:
    """Run `model` (in eval mode) over loader batches of (uint8 images (B, 1, S, S), targets (B, L),
    dataset rows (B,)); rows seen twice (a padded distributed sampler) count once.

    Always in float32, also when called inside an autocast region (a bf16 training step's): the
    OOD Gaussians and the temperatures fitted on these outputs must not inherit bfloat16's
    8-bit mantissa."""
    model.eval()
    kind = torch.device(device).type
    if not torch.amp.is_autocast_available(kind):
        return _collect(model, batches, device)
    with torch.autocast(kind, enabled=False):
        return _collect(model, batches, device)


def _collect(model: FeatureModel, batches: Iterable, device: torch.device | str) -> SplitOutputs:
    rows, logits, targets = [], [], []
    features: dict[str, list[np.ndarray]] = {}
    for images, target, index in batches:
        out = pooled_forward(model, config_input(images, model.config, device))
        rows.append(np.asarray(index))
        logits.append(out.logits.float().cpu().numpy())
        for name, value in out.features.items():
            features.setdefault(name, []).append(value.cpu().numpy())
        targets.append(np.asarray(target, dtype=np.float32))
    if not rows:
        raise DatasetError("no images to collect model outputs from: the split is empty")
    _, first = np.unique(np.concatenate(rows), return_index=True)
    return SplitOutputs(
        logits=np.concatenate(logits)[first],
        features={name: np.concatenate(parts)[first] for name, parts in features.items()},
        targets=np.concatenate(targets)[first],
    )
