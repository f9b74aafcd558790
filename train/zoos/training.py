"""Train a zoo's models and ship them: every model of its recipe (or those named with --only), each
with its own fit options on top of the preset's and the zoo's, into WORK/runs/<model>, then 8-bit
copies into the zoo (the zoo's other models stay)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from cxr_attention.core.errors import ConfigError
from cxr_attention.train.commands.sweep import Steps
from cxr_attention.train.zoos.phantoms import draw_training_phantom, training_phantom_title
from cxr_attention.train.zoos.recipe import ModelGrid, PhantomRecipe, ZooModel
from cxr_attention.train.zoos.ship import ship_runs


def zoo_options(
    recipe: ModelGrid, data: Path | str, overrides: dict[str, Any], progress: bool
) -> dict[str, Any]:
    """Fit options every model of the zoo shares: the preset's, the zoo's and `overrides` (the
    demo's hidden flags, for tests), reading `data`."""
    from cxr_attention.train.commands.fit import load_preset

    options = load_preset(recipe.preset) | dict(recipe.fit_options) | dict(overrides)
    # the cache makes loading nearly free: worker processes would only take cores from training
    return options | {"data": str(data), "workers": 0, "progress": progress}


def chosen_models(
    recipe: ModelGrid, only: tuple[str, ...] = (), overrides: dict[str, Any] | None = None
) -> list[ZooModel]:
    """The recipe's models, or those named in `only` (ConfigError for a name it lacks); the
    demo's hidden `overrides` (tests' tiny zoos) win over each model's own options too, so a
    model whose recipe sets its own epochs also trains for the epochs asked."""
    models = [replace(m, options=m.options | dict(overrides or {})) for m in recipe.models()]
    unknown = [name for name in only if name not in {m.name for m in models}]
    if unknown:
        raise ConfigError(
            f"--only {unknown[0]}: the zoo has no such model; its models are "
            f"{', '.join(m.name for m in models)}"
        )
    return [m for m in models if not only or m.name in only]


def model_config(options: dict[str, Any], model: ZooModel, out: Path):
    """The FitConfig of one model, into `out`/<model>."""
    from cxr_attention.core.training import FitConfig
    from cxr_attention.train.commands.sweep import variant_options

    own = variant_options(options | model.options, model.variant, out)
    return FitConfig.from_dict(own | {"out": str(out / model.name)})


def train_title(model: ZooModel, options: dict[str, Any]) -> str:
    return f"train {model.name} ({(options | model.options).get('epochs')} epochs)"


def retrain_phantom_zoo(
    work: Path, recipe: PhantomRecipe, options: dict[str, Any], models: list[ZooModel], zoo: Path
) -> None:
    """Draw the training phantom into `work`/phantom, cache it, train `models` and ship them into
    `zoo` (`train.zoos.ship`). `options` read that phantom (`zoo_options`)."""
    from cxr_attention.core.data.cache import build_cache
    from cxr_attention.core.data.sources import open_dataset

    progress = bool(options.get("progress"))
    size = int(options.get("image_size", 224))
    titles = [
        training_phantom_title(recipe),
        f"image cache at {size} px",
        *[train_title(model, options) for model in models],
        f"ship compact copies into {zoo}",
    ]
    steps = Steps(titles)
    steps.show_plan(f"cxr-attention demo --retrain: training the zoo in {work}")
    with steps.step(0) as outcome:
        draw_training_phantom(work / "phantom", recipe, progress, outcome)
    with steps.step(1):
        build_cache(open_dataset(work / "phantom"), size)
    runs = _train(steps, 2, options, models, work / "runs")
    with steps.step(len(titles) - 1):
        ship_runs(runs, zoo)


def retrain_films_zoo(
    data: Path, work: Path, options: dict[str, Any], models: list[ZooModel], zoo: Path
) -> None:
    """Cache the films at `data`, train `models` on them into `work`/runs and ship them into
    `zoo`, their timelines without the films."""
    from cxr_attention.core.data.audit import check_films
    from cxr_attention.core.data.cache import build_cache
    from cxr_attention.core.data.sources import open_dataset

    size = int(options["image_size"])
    titles = [
        f"image cache at {size} px",
        *[train_title(model, options) for model in models],
        f"ship compact copies into {zoo}",
    ]
    steps = Steps(titles)
    steps.show_plan(f"cxr-attention demo --retrain: training on {data} in {work}")
    with steps.step(0):
        read = model_config(options, models[0], work / "runs").read_options()
        films = check_films(open_dataset(data, read))
        build_cache(films, size, progress=bool(options.get("progress")))
    runs = _train(steps, 1, options, models, work / "runs")
    with steps.step(len(titles) - 1):
        ship_runs(runs, zoo, real_films=True)


def _train(
    steps: Steps, first: int, options: dict[str, Any], models: list[ZooModel], out: Path
) -> list[Path]:
    from cxr_attention.core.training import fit

    runs = []
    for i, model in enumerate(models):
        with steps.step(first + i):
            runs.append(fit(model_config(options, model, out)).path)
    return runs
