"""Attention against its baseline, in plain words: one sentence from the paired tests, and what the
phantom can and cannot show. Shared by the comparison report and the app's Compare page."""

from __future__ import annotations

import math
from collections.abc import Sequence

ALPHA = 0.05

PHANTOM_ATTENTION_NOTE = (
    "What this shows on the phantom: both models were trained the same way on the same synthetic "
    "films, one with CBAM spatial attention and one without; the attention gate was never told "
    "where lesions are. On the phantom such gates learn an image-wide weighting (where the chest "
    "and the heart are, where features are quiet), not the lesions: their maxima fall inside a "
    "lesion no more often than a random map's (docs/attention-diagnosis.md). So a difference in "
    "AUC here comes from that reweighting and from training noise, not from the model looking "
    "at the lesion; Grad-CAM of either model is what points at the lesions. The phantom was not "
    "tuned to make either model win."
)


def attention_effect(
    title: str,
    n_images: int,
    macro_attention: float,
    macro_baseline: float,
    per_label: Sequence[tuple[str, float, float]],
) -> str:
    """One paragraph: the macro AUCs, and which labels differ after Holm's correction.

    `per_label` holds (label, AUC difference attention - baseline, Holm-adjusted DeLong p).
    """
    tested = [(label, d, p) for label, d, p in per_label if not math.isnan(d) and not math.isnan(p)]
    better = [label for label, d, p in tested if p < ALPHA and d > 0]
    worse = [label for label, d, p in tested if p < ALPHA and d < 0]
    difference = macro_attention - macro_baseline
    text = (
        f"On {n_images} test films, {title} with attention reaches macro AUC {macro_attention:.3f} "
        f"against {macro_baseline:.3f} without ({difference:+.3f}). "
    )
    if not tested:
        return text + "No label has enough positive and negative films for DeLong's test."
    if not better and not worse:
        return text + (
            f"None of the {len(tested)} labels differs significantly after Holm's correction "
            f"(p < {ALPHA}): on these films attention neither helps nor hurts detectably."
        )
    parts = []
    if better:
        parts.append(f"better with attention for {', '.join(better)}")
    if worse:
        parts.append(f"worse with attention for {', '.join(worse)}")
    return text + (
        f"After Holm's correction over {len(tested)} labels (p < {ALPHA}) it is "
        + " and ".join(parts)
        + "; the other labels do not differ detectably."
    )
