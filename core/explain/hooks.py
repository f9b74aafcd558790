"""Borrowing a layer's output for one forward pass, with the hook always released.

Only Grad-CAM at an intermediate stage needs this: the final feature map comes from
`AttentionClassifier.features` without any hook. The hook belongs to one thread (the one that
opened the context): a forward pass that another thread (another app session) runs through the
same shared model at the same moment passes straight through it, so sessions never see each
other's activations and nothing on the model is left changed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class CapturedActivation:
    """The activation seen by the hook: a leaf tensor that requires grad (None until the forward)."""

    activation: torch.Tensor | None = None
    calls: int = 0
    _owner: int = field(default_factory=threading.get_ident, repr=False)


@contextlib.contextmanager
def capture_activation(module: nn.Module) -> Iterator[CapturedActivation]:
    """Within this block, `module`'s output (in this thread) is replaced by a detached leaf copy.

    The copy has the same values, so the forward pass is unchanged, but gradients stop at it: a
    later `torch.autograd.grad(logit, captured.activation)` runs back only as far as this layer,
    and the graph of the layers before it is freed as soon as the forward pass moves on.
    """
    captured = CapturedActivation()

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if threading.get_ident() != captured._owner:
            return None  # another thread's forward pass: leave it alone
        leaf = output.detach().requires_grad_(True)
        captured.activation = leaf
        captured.calls += 1
        return leaf

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()
