"""How well a segmenter finds the lung fields of outlined films it did not learn.

Each film goes through exactly what `cxr-attention lungs` does (`segment_lungs`: the view, the
network, the clean-up, back to the film's own size) and its field is compared with the manual mask
at the film's own size: Dice, per film, then the mean per group (centre) and over all. The same
films are scored a second time with opacities painted into their lung fields (seeded, as the
training augmentation paints them): a segmenter that keeps dense lung inside the field scores
about as well there; one that learnt "lung is dark" loses the opacities. Films it refuses count as
Dice 0 and are listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.lungs.augment import opacify
from cxr_attention.core.lungs.fit import dice, read_mask
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.pairs import OutlinedFilm
from cxr_attention.core.lungs.segment import segment_lungs


def film_scores(
    films: Sequence[OutlinedFilm], model: LungModel, opacified: bool = False, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per film: name, group, dice, plausible, reason."""
    rows = []
    for i, item in enumerate(films):
        film = load_radiograph(item.film)
        truth = read_mask(item.mask)
        pixels = (
            film.gray8 if film.gray8 is not None else np.rint(film.pixels * 255).astype(np.uint8)
        )
        if opacified:
            pixels = opacify(pixels, truth, np.random.default_rng([seed, i]))
        found = segment_lungs(pixels, model)
        score = dice(found.mask, truth) if found.plausible else 0.0
        rows.append(
            {
                "name": item.name,
                "group": item.group,
                "dice": score,
                "plausible": found.plausible,
                "reason": found.check.reason,
            }
        )
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """{"n", "mean_dice", "median_dice", "min_dice", "refused", "per_group": {group: same}}."""

    def figures(part: Sequence[dict[str, Any]]) -> dict[str, Any]:
        scores = np.array([r["dice"] for r in part], dtype=np.float64)
        return {
            "n": len(part),
            "mean_dice": float(scores.mean()) if len(part) else None,
            "median_dice": float(np.median(scores)) if len(part) else None,
            "min_dice": float(scores.min()) if len(part) else None,
            "refused": [r["name"] for r in part if not r["plausible"]],
        }

    groups = sorted({r["group"] for r in rows})
    return figures(rows) | {
        "per_group": {g: figures([r for r in rows if r["group"] == g]) for g in groups}
    }


def evaluate_segmenter(
    films: Sequence[OutlinedFilm], model: LungModel, seed: int = 0
) -> dict[str, Any]:
    """{"clear": summary on the films as they are, "opacified": with painted opacities}."""
    return {
        "clear": summarize(film_scores(films, model)),
        "opacified": summarize(film_scores(films, model, opacified=True, seed=seed)),
    }
