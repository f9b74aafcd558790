"""AdamW, a per-step schedule (linear warm-up, then cosine decay) and gradient clipping.

The schedule is a pure function of the optimiser step, so its whole state is one integer: resuming
a run restores that integer and the learning rate continues exactly where it stopped.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cxr_attention.core.models.attention import SpatialAttention


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, gate_lr_scale: float = 1.0
) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and normalisation weights (1-D tensors), and with the
    spatial gates' parameters in a group of their own that learns at `lr * gate_lr_scale`.

    Decaying a batch-norm scale towards 0 switches channels off; decaying biases buys nothing; the
    gates are not decayed either (a decayed gate drifts back to uniform). Each group's "lr_scale"
    is applied by `WarmupCosine`.
    """
    gates = {
        id(p) for m in model.modules() if isinstance(m, SpatialAttention) for p in m.parameters()
    }
    decay, no_decay, gate = [], [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        if id(param) in gates:
            gate.append(param)
        else:
            (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
    ]
    if gate:
        groups.append({"params": gate, "weight_decay": 0.0, "lr_scale": gate_lr_scale})
    return torch.optim.AdamW(groups, lr=lr)


class WarmupCosine:
    """Learning rate per optimiser step: 0 -> peak linearly over `warmup_steps`, then a cosine
    from peak down to `peak * min_ratio` at `total_steps`.

    Call `step()` after each optimiser step; `lr` is the rate for the next step.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        peak_lr: float,
        total_steps: int,
        warmup_steps: int,
        min_ratio: float = 0.01,
    ) -> None:
        self.optimizer = optimizer
        self.peak_lr = peak_lr
        self.total_steps = max(1, total_steps)
        self.warmup_steps = max(0, min(warmup_steps, self.total_steps))
        self.min_ratio = min_ratio
        self.steps_done = 0
        self._apply()

    def lr_at(self, step: int) -> float:
        """The learning rate used for optimiser step number `step` (0-based)."""
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        floor = self.peak_lr * self.min_ratio
        return floor + (self.peak_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    @property
    def lr(self) -> float:
        return self.lr_at(self.steps_done)

    def step(self) -> None:
        self.steps_done += 1
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * group.get("lr_scale", 1.0)

    def state_dict(self) -> dict[str, int]:
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.steps_done = int(state["steps_done"])
        self._apply()


def optimizer_steps_per_epoch(batches_per_epoch: int, accumulate: int) -> int:
    """Optimiser steps in one epoch; a final partial accumulation group still makes a step."""
    return math.ceil(batches_per_epoch / accumulate)


def clip_gradients(model: nn.Module, max_norm: float | None) -> None:
    """Clip the global gradient norm to `max_norm` (unscale fp16 gradients first); None: no-op."""
    if max_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
