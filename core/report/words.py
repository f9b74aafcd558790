"""Attention against its baseline, in plain words: one paragraph from the paired tests, and what the
phantom can and cannot show. Shared by the comparison report and the app's Compare page. (Where
the maps point, in words: `core.report.study_words`.)"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALPHA = 0.05

PHANTOM_ATTENTION_NOTE = (
    "What this shows on the phantom: each model was trained the same way on the same synthetic "
    "films, with or without attention; no attention was ever told where the lesions are, and the "
    "phantom was not tuned to make any model win. A difference in AUC says nothing about where a "
    "model looks: whether a map points at the lesions is measured against a random map on the "
    "same lesions (`cxr-attention study`, the study table), not assumed."
)


def attention_effect(
    title: str,
    n_images: int,
    macro_attention: float,
    macro_baseline: float,
    per_label: Sequence[tuple[str, float, float]],
) -> str:
    """One paragraph: the macro AUCs, and which labels differ after Holm's correction.

    `title` names the variant, e.g. "MobileNetV2 + class-specific attention (CSRA)"; `per_label`
    holds (label, AUC difference variant - baseline, Holm-adjusted DeLong p).
    """
    tested = [(label, d, p) for label, d, p in per_label if not math.isnan(d) and not math.isnan(p)]
    better = [label for label, d, p in tested if p < ALPHA and d > 0]
    worse = [label for label, d, p in tested if p < ALPHA and d < 0]
    difference = macro_attention - macro_baseline
    text = (
        f"On {n_images} test films, {title} reaches macro AUC {macro_attention:.3f} against "
        f"{macro_baseline:.3f} for its baseline ({difference:+.3f}). "
    )
    if not tested:
        return text + "No label has enough positive and negative films for DeLong's test."
    if not better and not worse and len(tested) == 1:
        return text + (
            f"DeLong's test finds no significant difference for {tested[0][0]} (p = "
            f"{tested[0][2]:.2f}): on these films this attention neither helps nor hurts detectably."
        )
    if not better and not worse:
        return text + (
            f"None of the {len(tested)} labels differs significantly after Holm's correction "
            f"(p < {ALPHA}): on these films this attention neither helps nor hurts detectably."
        )
    parts = []
    if better:
        parts.append(f"better than the baseline for {', '.join(better)}")
    if worse:
        parts.append(f"worse than the baseline for {', '.join(worse)}")
    return text + (
        f"After Holm's correction over {len(tested)} labels (p < {ALPHA}) it is "
        + " and ".join(parts)
        + "; the other labels do not differ detectably."
    )
