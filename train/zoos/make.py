"""Make a zoo again, as `cxr-attention demo --retrain / --reship / --refit-trust` do: train and
ship its models (`train.zoos.training`), evaluate them (`train.zoos.evaluate`, or the demo's own
build for the phantom zoo), ship that evaluation and write ZOO.json (`train.zoos.record`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from cxr_attention.train.zoos.demo_folder import DemoSettings, build_demo, rewrite_marker
from cxr_attention.train.zoos.registry import PHANTOM_ZOO, Zoo
from cxr_attention.train.zoos.training import chosen_models, zoo_options


def retrain_phantom(folder: Path, settings: DemoSettings, progress: bool) -> None:
    """Train the phantom zoo's models (those of --only, the others kept) on a training phantom
    drawn in `folder`/training and ship them into the zoo; then `reship_phantom`."""
    from cxr_attention.train.zoos.training import retrain_phantom_zoo

    models = chosen_models(settings.recipe, settings.only, settings.fit_overrides)
    work = folder / "training"
    options = zoo_options(settings.recipe, work / "phantom", settings.fit_overrides, progress)
    retrain_phantom_zoo(work, settings.recipe, options, models, Path(settings.zoo))
    reship_phantom(folder, settings, progress)


def refit_phantom(folder: Path, settings: DemoSettings, progress: bool) -> None:
    """Fit the phantom zoo's trust again on its training phantom, keeping the weights; then
    `reship_phantom`."""
    from cxr_attention.train.zoos.trust import refit_phantom_zoo

    refit_phantom_zoo(folder, Path(settings.zoo), settings.recipe, progress)
    reship_phantom(folder, settings, progress)


def reship_phantom(folder: Path, settings: DemoSettings, progress: bool) -> None:
    """Evaluate every model of the phantom zoo here, then ship that evaluation and a new
    ZOO.json."""
    from cxr_attention.train.zoos.install import PHANTOM_EVALUATION, ship_evaluation
    from cxr_attention.train.zoos.record import read_zoo, record_phantom_zoo

    zoo = Path(settings.zoo)
    runs = build_demo(folder, settings, progress=progress, fresh=True)
    for run in runs:
        ship_evaluation(run, zoo, PHANTOM_EVALUATION)
    options = zoo_options(settings.recipe, "<training phantom>", settings.fit_overrides, False)
    record_phantom_zoo(zoo, PHANTOM_ZOO.command, settings.recipe, options, runs)
    rewrite_marker(folder, replace(settings, zoo_created=read_zoo(zoo)["created"]))


def make_films_zoo(
    entry: Zoo,
    data: Path,
    zoo: Path,
    work: Path,
    retrain: bool,
    overrides: dict[str, Any],
    only: tuple[str, ...],
    progress: bool,
) -> None:
    """`entry`'s zoo of the films at `data` into `zoo`: its models trained and shipped (with
    `retrain`: those of `only`, the others kept), then all evaluated in `work` and recorded."""
    from cxr_attention.train.zoos.evaluate import evaluate_films_zoo
    from cxr_attention.train.zoos.record import record_films_zoo
    from cxr_attention.train.zoos.training import retrain_films_zoo

    recipe = entry.recipe
    options = zoo_options(recipe, data, overrides, progress)
    if retrain:
        retrain_films_zoo(data, work, options, chosen_models(recipe, only, overrides), zoo)
    runs = evaluate_films_zoo(data, zoo, work, recipe, progress)
    record_films_zoo(zoo, entry.command, recipe, options, runs, data)
