"""The registry of explanation methods and the one entry point, `explain`."""

from __future__ import annotations

import torch

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.attention import AttentionMap
from cxr_attention.core.explain.base import Explainer, Explanation, LabelRequest
from cxr_attention.core.explain.gradcam import GradCam
from cxr_attention.core.explain.integrated_gradients import IntegratedGradientsMap
from cxr_attention.core.explain.random_map import RandomMap
from cxr_attention.core.models.classifier import AttentionClassifier

METHODS: dict[str, type[Explainer]] = {
    cls.name: cls for cls in (AttentionMap, GradCam, IntegratedGradientsMap, RandomMap)
}


def explain(
    model: AttentionClassifier,
    x: torch.Tensor,
    labels: LabelRequest = None,
    method: str = "gradcam",
    **options,
) -> Explanation:
    """Maps in [0, 1] at input resolution for each image of `x` and each label asked for.

    model: an `AttentionClassifier` in eval mode (as `load_checkpoint` returns it).
    x: normalised float batch (B, C, H, W) from `core.data.preprocess.config_input`; never modified.
    labels: None (all of the model's labels), a name ("Infiltrate" is read as "Infiltration"), an
        index, or a list of them.
    method: "attention" (the model's own gate; `stage=` picks the gate, default the final one),
        "gradcam" (raw-logit Grad-CAM; `stage=` an earlier stage, default the final feature map),
        "integrated_gradients" (`steps=`, `internal_batch_size=`, `sign=`), or "random" (`seed=`
        or `generator=`, `sigma=`). Every method takes `ablate_attention=True`: the model runs
        with every gate set to 1 (an error for a baseline model, except for "random").
    Returns an `Explanation` (maps (B, K, H, W), labels, stage, scale, logits).
    """
    try:
        explainer = METHODS[method]
    except KeyError:
        raise ConfigError(
            f"unknown explanation method {method!r}: choose one of {', '.join(METHODS)}"
        ) from None
    return explainer(model)(x, labels, **options)
