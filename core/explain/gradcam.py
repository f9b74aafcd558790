"""Grad-CAM (Selvaraju et al., ICCV 2017) for a multi-label sigmoid classifier.

For label k and feature map A (C, h, w): weights w_c = mean over (i, j) of d logit_k / d A_c[i, j],
map = ReLU(sum_c w_c A_c). The target is the RAW LOGIT of the label, never a softmax (the labels are
independent sigmoids; a softmax would make one label's map depend on the others' scores).

Cost. For the final feature map the forward pass runs without a graph and the gradient is taken
only through the head (global average pooling + linear), so all labels of a batch cost one forward
pass plus one batched gradient through a linear layer. For an intermediate stage (`stage="stage3"`)
a forward hook lends the stage's output for one pass (see `hooks.py`) and `torch.autograd.grad`
runs back from the logits to that stage only, once per label with the graph kept in between;
`.backward()` over all weights is never used.
"""

from __future__ import annotations

import torch

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.base import Explainer, RawMaps
from cxr_attention.core.explain.hooks import capture_activation
from cxr_attention.core.models.attention import gate_call
from cxr_attention.core.models.classifier import AttentionClassifier


def grad_cam(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM from activations (B, C, h, w) and per-label gradients (K, B, C, h, w) -> (B, K, h, w)."""
    weights = gradients.mean(dim=(-2, -1))  # (K, B, C): global-average-pooled gradients
    cam = torch.einsum("kbc,bchw->bkhw", weights, activations)
    return torch.relu(cam)


def label_gradients(
    logits: torch.Tensor, activations: torch.Tensor, indices: tuple[int, ...], batched: bool
) -> torch.Tensor:
    """d logits[:, k] / d activations for each k in `indices` -> (K, B, C, h, w).

    Image b's logits depend only on image b's activations, so one gradient of the sum over the
    batch gives every image's gradient at once. `batched` uses `is_grads_batched` (one vectorised
    backward pass for all labels); otherwise one `autograd.grad` per label, keeping the graph.
    """
    n = len(indices)
    if batched and n > 1:
        selector = torch.zeros((n, *logits.shape), dtype=logits.dtype, device=logits.device)
        for k, index in enumerate(indices):
            selector[k, :, index] = 1.0
        (grads,) = torch.autograd.grad(
            logits, activations, grad_outputs=selector, is_grads_batched=True
        )
        return grads
    grads = []
    for k, index in enumerate(indices):
        (g,) = torch.autograd.grad(logits[:, index].sum(), activations, retain_graph=k < n - 1)
        grads.append(g)
    return torch.stack(grads)


def resolve_stage(model: AttentionClassifier, stage: str | None) -> str:
    """A stage name of this backbone ("stage0" ... final); None means the final feature map."""
    names = [s.name for s in model.stages]
    if stage is None:
        return names[-1]
    if stage not in names:
        raise ConfigError(f"unknown stage {stage!r}: this backbone has {', '.join(names)}")
    return stage


class GradCam(Explainer):
    """Grad-CAM on the final (gated) feature map, or on a named earlier stage."""

    name = "gradcam"

    def raw_maps(
        self,
        x: torch.Tensor,
        indices: tuple[int, ...],
        stage: str | None = None,
        ablate_attention: bool = False,
    ) -> RawMaps:
        if ablate_attention and not self.model.has_attention:
            raise ConfigError("this model has no attention to switch off (it is a baseline model)")
        stage = resolve_stage(self.model, stage)
        if stage == self.model.stages[-1].name:
            return self._final(x, indices, stage, ablate_attention)
        return self._intermediate(x, indices, stage, ablate_attention)

    def _final(
        self, x: torch.Tensor, indices: tuple[int, ...], stage: str, ablate: bool
    ) -> RawMaps:
        with torch.no_grad(), gate_call(ablate=ablate):
            features = self.model.features(x)
        # A fresh leaf: the gradient stops here, and the caller's tensors gain no graph.
        activations = features.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model.head_logits(activations)
            grads = label_gradients(logits, activations, indices, batched=True)
        return RawMaps(grad_cam(activations.detach(), grads), stage, logits.detach())

    def _intermediate(
        self, x: torch.Tensor, indices: tuple[int, ...], stage: str, ablate: bool
    ) -> RawMaps:
        info = next(s for s in self.model.stages if s.name == stage)
        module = self.model.backbone.get_submodule(info.module)
        with capture_activation(module) as captured, gate_call(ablate=ablate), torch.enable_grad():
            logits = self.model(x)
            if captured.activation is None or captured.calls != 1:
                raise ConfigError(f"stage {stage} ({info.module}) is not on the forward path once")
            activations = captured.activation
            grads = label_gradients(logits, activations, indices, batched=False)
        return RawMaps(grad_cam(activations.detach(), grads), stage, logits.detach())
