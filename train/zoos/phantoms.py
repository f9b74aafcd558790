"""The phantoms a phantom zoo learns and is scored on, drawn here (the generator is deterministic:
the same recipe draws the same films on every machine)."""

from __future__ import annotations

import json
from pathlib import Path

from cxr_attention.train.zoos.recipe import PhantomRecipe


def build_phantom(
    root: Path,
    n: int,
    size: int,
    seed: int,
    difficulty: str,
    progress: bool,
    splits: tuple[str, ...] = ("train_val", "test"),
) -> bool:
    """A phantom in `root` unless one with these settings is there; True if (re)built.

    `splits`: whose films to draw (the evaluation phantom draws its test films alone).
    """
    from cxr_attention.core.data.phantom import GENERATOR_VERSION, generate_phantom, plan_dataset
    from cxr_attention.core.progress import progress_bar

    manifest = root / "PHANTOM.json"
    if manifest.is_file():
        try:
            made = json.loads(manifest.read_text())
        except (OSError, ValueError):
            made = {}
        wanted = {
            "n": n,
            "size": size,
            "seed": seed,
            "difficulty": difficulty,
            "generator_version": GENERATOR_VERSION,
            "splits": list(splits),
        }
        if all(made.get(k) == v for k, v in wanted.items()):
            return False
    total = sum(p.split in splits for p in plan_dataset(n, seed))
    with progress_bar(total=total, desc="phantom", unit="img", enabled=progress) as bar:
        generate_phantom(
            root, n, size, seed, overwrite=True, progress=bar.update, difficulty=difficulty,
            splits=splits,
        )  # fmt: skip
    return True


def training_phantom_title(recipe: PhantomRecipe) -> str:
    return (
        f"training phantom: {recipe.train_images} films at {recipe.size} px, seed "
        f"{recipe.train_seed}"
    )


def draw_training_phantom(
    root: Path, recipe: PhantomRecipe, progress: bool, outcome: dict[str, str]
) -> None:
    """The zoo's training phantom in `root`, unless it is there already (then `outcome` says so)."""
    drawn = build_phantom(
        root, recipe.train_images, recipe.size, recipe.train_seed, recipe.difficulty, progress
    )
    if not drawn:
        outcome["note"] = "already built, skipped"


def evaluation_phantom_title(recipe: PhantomRecipe) -> str:
    return (
        f"evaluation phantom: {recipe.eval_images} films at {recipe.size} px, seed "
        f"{recipe.eval_seed} (no model trained on it; its test films alone are drawn)"
    )


def draw_evaluation_phantom(
    root: Path, recipe: PhantomRecipe, progress: bool, outcome: dict[str, str]
) -> None:
    """The zoo's evaluation phantom (its test films) in `root`, unless it is there already."""
    drawn = build_phantom(
        root, recipe.eval_images, recipe.size, recipe.eval_seed, recipe.difficulty, progress,
        splits=("test",),
    )  # fmt: skip
    if not drawn:
        outcome["note"] = "already built, skipped"
