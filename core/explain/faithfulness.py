"""Deletion and insertion curves (Petsiuk et al., RISE, BMVC 2018): is the map faithful?

Deletion: remove the map's most relevant pixels first (set them to black) and follow the label's
score; a faithful map makes it fall fast (small area under the curve). Insertion: start from a black
image and put the most relevant pixels back first; a faithful map makes the score rise fast (large
area). Compare against a random map of the same image to read the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.base import check_input, resolve_labels
from cxr_attention.core.explain.integrated_gradients import black_baseline
from cxr_attention.core.models.classifier import AttentionClassifier

SCORES = ("logit", "probability")


@dataclass(frozen=True)
class FaithfulnessCurve:
    """Scores of one label as pixels are removed (deletion) or put back (insertion)."""

    fractions: np.ndarray  # (S + 1,) share of pixels removed / inserted, 0 ... 1
    deletion: np.ndarray  # (S + 1,) score with the top `fraction` of pixels set to black
    insertion: np.ndarray  # (S + 1,) score with only the top `fraction` of pixels kept
    deletion_auc: float  # trapezoid area under `deletion` over [0, 1]: lower is more faithful
    insertion_auc: float  # ... under `insertion`: higher is more faithful
    score: str  # "logit" or "probability"


def _area(fractions: np.ndarray, values: np.ndarray) -> float:
    return float(np.sum((values[1:] + values[:-1]) * np.diff(fractions)) / 2.0)


def deletion_insertion(
    model: AttentionClassifier,
    x: torch.Tensor,
    label: int | str,
    heatmap: np.ndarray | torch.Tensor,
    steps: int = 20,
    batch_size: int = 8,
    score: str = "logit",
) -> FaithfulnessCurve:
    """Deletion and insertion curves for one image `x` (1, C, H, W) and one map (H, W).

    Pixels are ranked by the map (ties in raster order: pass a class map as `Explanation.ranked`,
    its log-odds, which do not tie where its sigmoid saturates); step s removes or inserts the
    top round(s / steps * H * W) of them, across all channels. Runs `2 * (steps + 1)` forward passes in
    batches of `batch_size`, without gradients; `x` is not modified.
    """
    check_input(model, x)
    if x.shape[0] != 1:
        raise ConfigError("deletion_insertion scores one image: pass x of shape (1, C, H, W)")
    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
    if score not in SCORES:
        raise ConfigError(f"unknown score {score!r}: choose one of {', '.join(SCORES)}")
    (index,) = resolve_labels(model.config.labels, label)
    heat = torch.as_tensor(np.asarray(heatmap, dtype=np.float32)).flatten()
    height, width = x.shape[-2:]
    if heat.numel() != height * width:
        raise ConfigError(f"map has {heat.numel()} pixels, the image {height * width}")
    order = torch.argsort(-heat, stable=True).to(x.device)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.rint(fractions * heat.numel()).astype(int)
    black = black_baseline(model, x)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=x.device)
    rank = rank.view(1, 1, height, width)

    curves = {}
    for mode in ("deletion", "insertion"):
        values = []
        for start in range(0, len(counts), batch_size):
            chunk = torch.as_tensor(counts[start : start + batch_size], device=x.device)
            top = rank < chunk.view(-1, 1, 1, 1)  # (n, 1, H, W): among the first k pixels
            # Deletion blacks out the top pixels; insertion keeps only them, on black.
            first, rest = (black, x) if mode == "deletion" else (x, black)
            batch = torch.where(top, first, rest)
            with torch.no_grad():
                logits = model(batch)[:, index]
            values.append(torch.sigmoid(logits) if score == "probability" else logits)
        curves[mode] = torch.cat(values).float().cpu().numpy()
    return FaithfulnessCurve(
        fractions=fractions,
        deletion=curves["deletion"],
        insertion=curves["insertion"],
        deletion_auc=_area(fractions, curves["deletion"]),
        insertion_auc=_area(fractions, curves["insertion"]),
        score=score,
    )
