"""Carry a trained classifier's weights into a new one for other labels: fine-tuning's first step.

A project model (a run folder or checkpoint of any labels) gives a new model of the same backbone:

- its **backbone**, every tensor (batch-norm statistics included); a new model that ends at an
  earlier stage (`head_stage`) takes the stages it keeps and leaves the rest;
- its **gates** where the new model has a gate after the same stage, of the same layout (kind,
  kernel, pooling, normalisation); a gate the new model lacks is left, one the start lacks starts
  fresh;
- never its **head**: the new labels get a fresh one (whatever labels the start had).

What cannot be carried is refused in one line, before any data is read: another backbone, a
backbone that ends earlier than the new model's (no weights for its later stages), or another gate
layout after the same stage. `plan_transfer` decides from tensor names and shapes alone, so it
runs on models built on the meta device; `Transfer.apply` then loads the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from cxr_attention.core.errors import PretrainedWeightsError
from cxr_attention.core.models.attention import GatedStage
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig

BACKBONE, GATE, HEAD = "backbone", "gate", "head"


@dataclass(frozen=True)
class Part:
    """Where one state_dict entry belongs: the backbone, a gate (`group` = its stage name), the head;
    `name` is the same for the same tensor in a gated and an ungated model."""

    kind: str
    group: str
    name: str


def model_parts(model: AttentionClassifier) -> dict[str, Part]:
    """Every state_dict key of `model` -> its `Part`. A gated stage wraps its stage
    (`blocks.5` -> `blocks.5.stage` beside `blocks.5.attention`); the canonical name drops that."""
    gated = {
        f"{name}.": module.attention.name
        for name, module in model.named_modules()
        if isinstance(module, GatedStage)
    }
    final = model.final_attention.name if model.final_attention is not None else ""
    parts = {}
    for key in model.state_dict():
        if key.startswith("head."):
            parts[key] = Part(HEAD, "", key)
        elif key.startswith("final_attention."):
            parts[key] = Part(GATE, final, key.removeprefix("final_attention."))
        else:
            parts[key] = _backbone_or_gate(key, gated)
    return parts


def _backbone_or_gate(key: str, gated: dict[str, str]) -> Part:
    for prefix, stage in gated.items():
        if key.startswith(prefix + "attention."):
            return Part(GATE, stage, key.removeprefix(prefix + "attention."))
        if key.startswith(prefix + "stage."):
            return Part(BACKBONE, "", prefix + key.removeprefix(prefix + "stage."))
    return Part(BACKBONE, "", key)


def gate_layout(config: ModelConfig) -> tuple[Any, ...] | None:
    """What a gate of this model is, beyond its place (None without gates)."""
    if config.kind not in ("spatial", "cbam"):
        return None
    return (
        config.attention_kind,
        config.attention_kernel,
        config.attention_pool,
        config.attention_normalise,
    )


def _layout_words(layout: tuple[Any, ...]) -> str:
    kind, kernel, pool, normalise = layout
    return f"{kind}, {kernel}x{kernel}, {pool}" + (", normalised" if normalise else "")


@dataclass
class Transfer:
    """What a new model takes from a start: `weights` (new model's key -> tensor) and, for the
    record, what was taken, left and started fresh."""

    source: str  # how the start is named in messages
    weights: dict[str, torch.Tensor]
    took: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    fresh_keys: frozenset[str] = frozenset()

    def apply(self, model: AttentionClassifier) -> None:
        """Load the carried tensors into `model`; everything else keeps its initialisation."""
        missing, unexpected = model.load_state_dict(self.weights, strict=False)
        if unexpected or set(missing) != set(self.fresh_keys):
            odd = unexpected or sorted(set(missing) ^ set(self.fresh_keys))
            raise PretrainedWeightsError(
                f"{self.source} does not fit the new model where planned (first: {odd[0]})"
            )

    def summary(self) -> dict[str, list[str]]:
        return {"took": list(self.took), "left": list(self.left), "fresh": list(self.fresh)}


def plan_transfer(
    source: str,
    start: AttentionClassifier,
    start_state: dict[str, torch.Tensor],
    model: AttentionClassifier,
) -> Transfer:
    """Match the start's tensors (`start_state`, keyed as `start`'s state_dict) to `model`'s.

    `start` and `model` may live on the meta device (only names and shapes are read). Raises
    `PretrainedWeightsError` in one line when the start cannot be carried over.
    """
    old, new = start.config, model.config
    if old.backbone != new.backbone:
        raise PretrainedWeightsError(
            f"{source} is a {old.backbone} model and this run trains {new.backbone}: start from a "
            f"{new.backbone} model, or train {old.backbone} (--backbone {old.backbone})"
        )
    old_parts = model_parts(start)
    by_part = {old_parts[key]: tensor for key, tensor in start_state.items() if key in old_parts}
    new_parts = model_parts(model)
    new_shapes = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    _check_backbone(source, old, new, by_part, new_parts, new_shapes)
    old_gates = {p.group for p in old_parts.values() if p.kind == GATE}
    new_gates = {p.group for p in new_parts.values() if p.kind == GATE}
    _check_gates(source, old, new, old_gates & new_gates, by_part, new_parts, new_shapes)

    weights, fresh_keys = {}, set()
    for key, part in new_parts.items():
        taken = part.kind != HEAD and part in by_part
        if part.kind == GATE and part.group not in old_gates:
            taken = False
        if taken:
            weights[key] = by_part[part]
        else:
            fresh_keys.add(key)
    kept_backbone = {p for p in new_parts.values() if p.kind == BACKBONE}
    left_backbone = [p for p in old_parts.values() if p.kind == BACKBONE and p not in kept_backbone]
    shared = sorted(old_gates & new_gates)
    took = ["backbone"] + ([f"gates after {', '.join(shared)}"] if shared else [])
    left = []
    if left_backbone:
        left.append(
            f"{len(left_backbone)} backbone tensors past {model.stages[-1].name} "
            f"(this model ends there)"
        )
    if old_gates - new_gates:
        left.append(f"gates after {', '.join(sorted(old_gates - new_gates))}")
    left.append(f"its head ({', '.join(old.labels)})")
    fresh = []
    if new_gates - old_gates:
        fresh.append(f"gates after {', '.join(sorted(new_gates - old_gates))}")
    elif new.kind == "class":
        fresh.append("a class-specific head")
    fresh.append(f"a head for {', '.join(new.labels)}")
    return Transfer(source, weights, took, left, fresh, frozenset(fresh_keys))


def _check_backbone(
    source: str,
    old: ModelConfig,
    new: ModelConfig,
    by_part: dict[Part, torch.Tensor],
    new_parts: dict[str, Part],
    new_shapes: dict[str, tuple[int, ...]],
) -> None:
    needed = [(key, part) for key, part in new_parts.items() if part.kind == BACKBONE]
    missing = [part.name for _key, part in needed if part not in by_part]
    if missing:
        hint = (
            f": it ends at an earlier stage (head stage {old.head_stage}); train with "
            f"--head-stage {old.head_stage}"
            if old.head_stage != new.head_stage
            else ""
        )
        raise PretrainedWeightsError(
            f"{source} has no weights for {len(missing)} of this model's backbone tensors "
            f"(first: {missing[0]}){hint}"
        )
    for key, part in needed:
        if tuple(by_part[part].shape) != new_shapes[key]:
            raise PretrainedWeightsError(
                f"{source}'s backbone does not fit this model: {part.name} is "
                f"{tuple(by_part[part].shape)} there, {new_shapes[key]} here"
            )


def _check_gates(
    source: str,
    old: ModelConfig,
    new: ModelConfig,
    shared: set[str],
    by_part: dict[Part, torch.Tensor],
    new_parts: dict[str, Part],
    new_shapes: dict[str, tuple[int, ...]],
) -> None:
    if not shared:
        return
    old_layout, new_layout = gate_layout(old), gate_layout(new)
    fits = old_layout == new_layout and all(
        part in by_part and tuple(by_part[part].shape) == new_shapes[key]
        for key, part in new_parts.items()
        if part.kind == GATE and part.group in shared
    )
    if not fits:
        stage = sorted(shared)[0]
        raise PretrainedWeightsError(
            f"{source}'s gate after {stage} is another attention layout "
            f"({_layout_words(old_layout)}; this model's: {_layout_words(new_layout)}): leave out "
            "--attention-kind, --attention-pool and --attention-normalise to keep its layout, or "
            "gate other stages (--attention-stages)"
        )
