"""One training epoch and one validation pass.

A batch arrives from the loader as uint8 images (B, 1, S, S), float targets (B, L) and dataset row
indices (B,). On the device it becomes float in [0, 1], is augmented (training only), then
normalised by `config_input` — the same function evaluation, `predict` and the app use.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.metrics.auc import macro_auc, micro_auc
from cxr_attention.core.models.attention import gate_call
from cxr_attention.core.models.class_attention import CLASS_MAP
from cxr_attention.core.models.classifier import ModelConfig
from cxr_attention.core.training.device import DevicePlan
from cxr_attention.core.training.distributed import (
    DistContext,
    gather_predictions,
    mean_across,
    share_buffers,
    sum_across,
    unwrap,
)
from cxr_attention.core.training.equivariance import equivariance_loss, turn_film
from cxr_attention.core.training.lung_term import lung_term
from cxr_attention.core.training.optim import WarmupCosine, clip_gradients
from cxr_attention.core.training.progress import Reporter


@dataclass
class StepParts:
    """What one optimiser step needs, bundled so the epoch function reads top to bottom."""

    model: nn.Module  # possibly DDP-wrapped
    model_config: ModelConfig
    pos_weight: torch.Tensor | None  # (L,) on the device: BCE weight of positives, or None
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine
    scaler: torch.amp.GradScaler
    plan: DevicePlan
    augment: nn.Module | None  # applied to the float [0, 1] batch during training
    accumulate: int
    clip_grad: float | None
    equivariance: float = 0.0  # weight of the maps' half-turn term (core/training/equivariance.py)
    lung_weight: float = (
        0.0  # weight of the maps' outside-the-lungs term (core/training/lung_term.py)
    )
    lung_fields: Callable[[torch.Tensor], torch.Tensor] | None = None  # dataset rows (B,) ->
    # uint8 (B, 1, S, S) lung fields in the films' frame, for the lung term


@dataclass(frozen=True)
class TrainResult:
    loss: float  # mean over batches and processes
    images: int  # training images seen by all processes
    seconds: float


@dataclass(frozen=True)
class ValResult:
    loss: float
    macro_auc: float
    micro_auc: float
    indices: np.ndarray  # (n,) dataset row indices, sorted, each once
    probabilities: np.ndarray  # (n, L) sigmoid outputs
    targets: np.ndarray  # (n, L) 0/1


def device_batch(
    images: torch.Tensor, parts: StepParts, augment: bool, lungs: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 (B, 1, S, S) on the host -> normalised model input on the device, and the films'
    lung fields (uint8 (B, 1, S, S), when given) moved by the same augmentation, in {0, 1}."""
    x = images.to(parts.plan.device, non_blocking=True).float().div_(255.0)
    if lungs is not None:
        x = torch.cat((x, lungs.to(parts.plan.device).float().div_(255.0)), dim=1)
    if augment and parts.augment is not None:
        x = parts.augment(x)
    fields = (x[:, 1:] >= 0.5).float() if lungs is not None else None
    return parts.plan.images(config_input(x[:, :1], parts.model_config, parts.plan.device)), fields


def bce_loss(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None
) -> torch.Tensor:
    """Mean binary cross-entropy over images and labels, in float32 whatever autocast did."""
    if pos_weight is not None:
        pos_weight = pos_weight.to(logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=pos_weight)


def logits_and_terms(
    parts: StepParts, x: torch.Tensor, findings: torch.Tensor, lungs: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | float]:
    """Logits of the films, and the weighted map terms of the loss in one forward pass:

    - the half-turn term: how far the class maps of the films with a finding, turned half a turn,
      are from their maps turned back (films and turned films share the pass and its batch norm;
      films without a finding are not turned: they would add nothing);
    - the lung term: the share of the films' own maps outside their lung fields.
    """
    model = parts.model
    if not parts.equivariance and not parts.lung_weight:
        return model(x), 0.0
    with_finding = findings.any(dim=1)
    turned = turn_film(x[with_finding]) if parts.equivariance else x[:0]
    with gate_call(activation=bool(parts.lung_weight)) as call:
        logits = model(torch.cat((x, turned)))
    n = x.shape[0]
    terms = logits.new_zeros((), dtype=torch.float32)
    if parts.equivariance:
        maps = call.maps[CLASS_MAP]
        gap = equivariance_loss(
            maps[:n][with_finding], maps[n:], findings[with_finding], size=x.shape[-1]
        )
        terms = terms + parts.equivariance * gap
    if parts.lung_weight and lungs is not None:
        own = {name: m[:n] for name, m in call.maps.items()}
        terms = terms + parts.lung_weight * lung_term(own, lungs, findings)
    return logits[:n], terms


def train_one_epoch(
    parts: StepParts,
    loader: Iterable,
    n_batches: int,
    context: DistContext,
    report: Reporter,
    desc: str,
) -> TrainResult:
    """Train over the first `n_batches` batches of `loader`; one optimiser step per group of
    `accumulate` batches (a final smaller group still steps, its loss scaled to its own size)."""
    model, plan = parts.model, parts.plan
    model.train()
    if parts.augment is not None:
        parts.augment.train()
    parts.optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=plan.device)  # summed on the device: no sync per batch
    seen, images, start = 0, 0, time.perf_counter()
    for i, (x_uint8, targets, rows) in enumerate(
        report.batches(itertools.islice(loader, n_batches), n_batches, desc)
    ):
        group_start = (i // parts.accumulate) * parts.accumulate
        group_size = min(parts.accumulate, n_batches - group_start)
        completes_group = i == group_start + group_size - 1
        fields = parts.lung_fields(rows) if parts.lung_weight and parts.lung_fields else None
        x, lungs = device_batch(x_uint8, parts, augment=True, lungs=fields)
        y = targets.to(plan.device, non_blocking=True).float()
        # Under DDP, gradients are all-reduced only on the batch that completes a group.
        skip_sync = context.is_distributed and not completes_group
        with model.no_sync() if skip_sync else contextlib.nullcontext():
            with plan.autocast():
                logits, terms = logits_and_terms(parts, x, y > 0, lungs)
            loss = bce_loss(logits, y, parts.pos_weight) + terms
            parts.scaler.scale(loss / group_size).backward()
        if completes_group:
            parts.scaler.unscale_(parts.optimizer)  # clip true gradients, not scaled ones
            clip_gradients(model, parts.clip_grad)
            parts.scaler.step(parts.optimizer)
            parts.scaler.update()
            parts.optimizer.zero_grad(set_to_none=True)
            parts.schedule.step()
        loss_sum += loss.detach()
        seen += 1
        images += x.shape[0]
    seconds = time.perf_counter() - start
    mean_loss = mean_across(float(loss_sum) / max(seen, 1), seen, context, plan.device)
    return TrainResult(mean_loss, sum_across(images, context, plan.device), seconds)


@torch.no_grad()
def validate(
    parts: StepParts, loader: Iterable, n_batches: int, context: DistContext, report: Reporter
) -> ValResult:
    """Score this process's shard, gather all shards, and compute loss and AUCs on the whole split."""
    model, plan = unwrap(parts.model), parts.plan  # no DDP wrapper in eval: no gradients to sync
    share_buffers(model, context)
    model.eval()
    rows, logits_all, targets_all = [], [], []
    for x_uint8, targets, index in report.batches(loader, n_batches, "validate"):
        x, _ = device_batch(x_uint8, parts, augment=False)
        with plan.autocast():
            logits = model(x)
        rows.append(torch.as_tensor(index))
        logits_all.append(logits.float())
        targets_all.append(targets.to(plan.device).float())
    indices, logits, targets = gather_predictions(
        torch.cat(rows), torch.cat(logits_all), torch.cat(targets_all), context, plan.device
    )
    logits_t, targets_t = torch.from_numpy(logits), torch.from_numpy(targets)
    probabilities = torch.sigmoid(logits_t).numpy()
    return ValResult(
        loss=float(bce_loss(logits_t, targets_t, parts.pos_weight)),
        macro_auc=macro_auc(targets, probabilities),
        micro_auc=micro_auc(targets, probabilities),
        indices=indices,
        probabilities=probabilities,
        targets=targets,
    )
