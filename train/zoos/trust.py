"""Fit a shipped model's trust again, keeping its 8-bit weights: its OOD description,
temperatures and thresholds (after a change to what the description holds, or to the weights'
precision, which moves the features a little)."""

from __future__ import annotations

from pathlib import Path

import torch

from cxr_attention.train.commands.sweep import Steps
from cxr_attention.train.zoos.phantoms import draw_training_phantom, training_phantom_title
from cxr_attention.train.zoos.recipe import PhantomRecipe


def refit_shipped(shipped: Path, data: Path | None = None) -> None:
    """Fit a shipped model's OOD description, temperatures and thresholds again on its training
    films (at `data` when not where it was trained), keeping its 8-bit weights."""
    from cxr_attention.core.models.checkpoint import read_checkpoint_data
    from cxr_attention.core.models.compact import compact_checkpoint
    from cxr_attention.core.training.record import refit_trust, rethreshold_ood
    from cxr_attention.train.zoos.ship import SHIPPED

    checkpoint = shipped / SHIPPED[0]
    refit_trust(shipped, data)
    torch.save(compact_checkpoint(read_checkpoint_data(checkpoint)), checkpoint)
    rethreshold_ood(shipped, data)  # on the description as stored, in float16


def refit_phantom_zoo(folder: Path, zoo: Path, recipe: PhantomRecipe, progress: bool) -> None:
    """Fit every model of the phantom zoo in `zoo` again on its training phantom, drawn into
    `folder`/training/phantom, keeping the weights."""
    from cxr_attention.train.zoos.install import require_shipped

    phantom = folder / "training" / "phantom"
    names = recipe.model_names()
    require_shipped(names, zoo)  # before minutes of work, not after
    titles = [
        training_phantom_title(recipe),
        *[f"describe {name}'s training films again" for name in names],
    ]
    steps = Steps(titles)
    steps.show_plan(f"cxr-attention demo --refit-trust: the zoo in {zoo}")
    with steps.step(0) as outcome:
        draw_training_phantom(phantom, recipe, progress, outcome)
    for i, name in enumerate(names):
        with steps.step(1 + i):
            refit_shipped(zoo / name, phantom)
