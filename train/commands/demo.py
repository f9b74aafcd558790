"""`cxr-attention demo [--no-app] [--dir DIR] [--retrain]`: a working demo on a fresh machine, offline.

The demo zoo — MobileNetV2 and EfficientNet-B0, each with and without spatial attention, trained on
the synthetic phantom — ships in assets/zoo (see `train/zoo.py`). The demo draws an evaluation
phantom with a seed no model trained on (as many films as the zoo was measured on), installs the
zoo with its evaluation on those very films (or, when the films differ or with `--rebuild`,
evaluates every model and scores its maps against the lesion masks here), writes the comparison
report and opens the app. `--retrain` first rebuilds the zoo itself (the recorded command that made
assets/zoo; about an hour on 2 CPU cores). Everything else lands in DIR (default
~/.cache/cxr-attention/demo, or ./demo when the home folder is not writable):

    DIR/phantom/          the evaluation phantom's test films (ChestX-ray14 layout + masks/)
    DIR/runs/<variant>/   one run folder per model (checkpoint, timeline, metrics, localization)
    DIR/report/           report.md, report.html
    DIR/training/         (--retrain) the training phantom and the full-precision runs
    DIR/DEMO.json         what was built; its presence makes a second call go straight to the app
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cxr_attention.core.errors import ConfigError, CxrError
from cxr_attention.train.commands.app import add_host_flag
from cxr_attention.train.commands.sweep import Steps, set_threads
from cxr_attention.train.real_zoo import REAL_ZOO_DIR
from cxr_attention.train.zoo import ZOO_DIR, ZooRecipe, read_zoo, recipe_of, ship_evaluation

MARKER = "DEMO.json"
DEMO_VERSION = 2  # bump when the demo's steps change: older demo folders are rebuilt


@dataclass(frozen=True)
class DemoSettings:
    """What the demo builds; DEMO.json records it so that a changed zoo or recipe rebuilds."""

    recipe: ZooRecipe = field(default_factory=ZooRecipe)
    zoo: str = str(ZOO_DIR)
    zoo_created: str = ""  # ZOO.json's date: a rebuilt zoo is evaluated again
    real_zoo: str = ""  # the real-film zoo installed beside it ("" for none)
    real_zoo_created: str = ""  # its ZOO.json's date: a rebuilt one is installed again
    retrain: bool = False
    fit_overrides: dict[str, Any] = field(default_factory=dict)  # on top of the preset (tests)
    only: tuple[str, ...] = ()  # --retrain these variants alone, keeping the zoo's others
    n_resamples: int = 200  # bootstrap resamples for the CIs
    version: int = DEMO_VERSION

    def as_json(self) -> dict[str, Any]:
        data = asdict(self) | {"recipe": self.recipe.as_json()}
        # what the evaluation depends on; how the zoo was trained is ZOO.json's business
        for key in ("retrain", "fit_overrides", "only"):
            data.pop(key)
        return data


def default_dir() -> Path:
    """~/.cache/cxr-attention/demo when writable, else ./demo."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cxr-attention"
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.touch()
        probe.unlink()
        return home / "demo"
    except OSError:
        return Path.cwd() / "demo"


def is_built(folder: Path, settings: DemoSettings) -> bool:
    """DEMO.json records these settings and every run it lists is still evaluated."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("settings") != settings.as_json():
        return False
    runs = [folder / "runs" / name for name in recorded.get("runs", [])]
    return bool(runs) and all((run / "metrics.json").is_file() for run in runs)


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


def fit_options(data: Path, settings: DemoSettings, progress: bool) -> dict[str, Any]:
    from cxr_attention.train.commands.fit import load_preset

    options = load_preset(settings.recipe.preset) | dict(settings.fit_overrides)
    # the cache makes loading nearly free: worker processes would only take cores from training
    return options | {"data": str(data), "workers": 0, "progress": progress}


def training_phantom_title(recipe: ZooRecipe) -> str:
    return (
        f"training phantom: {recipe.train_images} films at {recipe.size} px, seed "
        f"{recipe.train_seed}"
    )


def draw_training_phantom(
    root: Path, recipe: ZooRecipe, progress: bool, outcome: dict[str, str]
) -> None:
    """The zoo's training phantom in `root`, unless it is there already (then `outcome` says so)."""
    drawn = build_phantom(
        root, recipe.train_images, recipe.size, recipe.train_seed, recipe.difficulty, progress
    )
    if not drawn:
        outcome["note"] = "already built, skipped"


def retrain_zoo(folder: Path, settings: DemoSettings, progress: bool) -> None:
    """Train every variant on a training phantom and ship compact copies into the zoo folder."""
    from cxr_attention.core.data.cache import build_cache
    from cxr_attention.core.data.sources import open_dataset
    from cxr_attention.core.training import FitConfig, fit
    from cxr_attention.train.commands.sweep import variant_options
    from cxr_attention.train.zoo import ship_run

    recipe, zoo = settings.recipe, Path(settings.zoo)
    variants = [v for v in recipe.variants() if not settings.only or v.name in settings.only]
    training = folder / "training"
    options = fit_options(training / "phantom", settings, progress)
    own = {v.name: options | recipe.options_for(v.name) for v in variants}
    titles = [
        training_phantom_title(recipe),
        f"image cache at {options.get('image_size', 224)} px",
        *[f"train {v.name} ({own[v.name].get('epochs')} epochs)" for v in variants],
        f"ship compact copies into {zoo}",
    ]
    steps = Steps(titles)
    steps.show_plan(f"cxr-attention demo --retrain: training the zoo in {training}")
    with steps.step(0) as outcome:
        draw_training_phantom(training / "phantom", recipe, progress, outcome)
    with steps.step(1):
        build_cache(open_dataset(training / "phantom"), int(options.get("image_size", 224)))
    runs = []
    for i, variant in enumerate(variants):
        with steps.step(2 + i):
            config = FitConfig.from_dict(
                variant_options(own[variant.name], variant, training / "runs")
            )
            runs.append(fit(config).path)
    with steps.step(len(titles) - 1):
        for run in runs:
            shutil.rmtree(zoo / run.name, ignore_errors=True)
        zoo.mkdir(parents=True, exist_ok=True)
        for run in runs:
            ship_run(run, zoo)
        # ZOO.json comes after the evaluation (`record_zoo`); an old one no longer describes it
        (zoo / "ZOO.json").unlink(missing_ok=True)


def localize(run: Path, data: Path, limit: int) -> str:
    """Score the run's maps on the lesion masks: its own attention maps, or Grad-CAM for a
    baseline."""
    from cxr_attention.core.explain.localize_run import localize_run
    from cxr_attention.core.models.kinds import parse_variant

    method = "gradcam" if parse_variant(run.name)[1] is None else "attention"
    report = localize_run(run, data=data, method=method, limit=limit)
    return f"{method}: pointing game {report['overall']['pointing_game']:.2f}"


def study(run: Path, data: Path, limit: int) -> str:
    """Every map of the run against the lesion masks, faithfulness and cost (RUN/study.json)."""
    from cxr_attention.core.study.run import run_study

    result = run_study(run, data=data, limit=limit)
    own = result.get("own_map") or next(iter(result["maps"]))
    pointing = result["maps"][own]["localization"]["overall"]["pointing_game"]
    return f"{own}: pointing game {pointing:.2f}"


def evaluate_zoo(
    folder: Path, settings: DemoSettings, progress: bool, fresh: bool = False
) -> list[Path]:
    """Evaluation phantom, the installed zoo, its evaluation, localization, report. Returns runs.

    The zoo's shipped evaluation is installed when it was made on these very films, unless `fresh`.
    """
    from cxr_attention.core.data.sources import open_dataset
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.report import compare_runs
    from cxr_attention.train.zoo import install_evaluation, install_zoo

    recipe, zoo_folder = settings.recipe, Path(settings.zoo)
    zoo = read_zoo(zoo_folder) or {"runs": {v.name: {} for v in recipe.variants()}}
    names = list(zoo["runs"])
    phantom = folder / "phantom"
    titles = [
        f"evaluation phantom: {recipe.eval_images} films at {recipe.size} px, seed "
        f"{recipe.eval_seed} (no model trained on it; its test films alone are drawn)",
        f"install the demo zoo from {settings.zoo}: {len(names)} models",
        *[f"evaluate {name}" for name in names],
        *[f"localize the maps of {name}" for name in names],
        *[f"attention study of {name}" for name in names],
        "compare -> report",
        f"install the real-film zoo from {settings.real_zoo or '(none shipped)'}",
    ]
    steps = Steps(titles)
    steps.show_plan(f"cxr-attention demo: building in {folder} ({set_threads()} threads)")
    (folder / MARKER).unlink(missing_ok=True)
    with steps.step(0) as outcome:
        if not build_phantom(
            phantom, recipe.eval_images, recipe.size, recipe.eval_seed, recipe.difficulty, progress,
            splits=("test",),
        ):  # fmt: skip
            outcome["note"] = "already built, skipped"
    with steps.step(1):
        runs = install_zoo(folder / "runs", names, zoo_folder)
        fingerprint = open_dataset(phantom).fingerprint
    shipped = {
        run: not fresh and install_evaluation(run, phantom, fingerprint, zoo_folder) for run in runs
    }
    for i, run in enumerate(runs):
        with steps.step(2 + i) as outcome:
            if shipped[run]:
                outcome["note"] = "shipped evaluation of these very films installed"
            else:
                evaluate_run(
                    run, data=phantom, n_resamples=settings.n_resamples, progress=progress,
                    num_workers=0,
                )  # fmt: skip
    for i, run in enumerate(runs):
        with steps.step(2 + len(runs) + i) as outcome:
            if shipped[run]:
                outcome["note"] = "shipped with the evaluation"
            else:
                outcome["note"] = localize(run, phantom, recipe.localize_limit)
    for i, run in enumerate(runs):
        with steps.step(2 + 2 * len(runs) + i) as outcome:
            if shipped[run]:
                outcome["note"] = "shipped with the evaluation"
            else:
                outcome["note"] = study(run, phantom, recipe.localize_limit)
    with steps.step(len(titles) - 2):
        paths = compare_runs(runs, folder / "report", n_resamples=settings.n_resamples)
    with steps.step(len(titles) - 1) as outcome:
        real = install_real(folder / "runs", settings)
        outcome["note"] = f"{len(real)} models in {folder / 'runs' / REAL_RUNS}" if real else "none"
    record = {"settings": settings.as_json(), "runs": [r.name for r in runs]}
    record["report"] = str(paths.html)
    (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return runs


def user_zoo(folder: Path, args: argparse.Namespace) -> Path:
    """Where a zoo that is made or refitted goes when --zoo is not given: DIR/zoo (DIR/zoo-<data>
    for a real-film zoo), never the installation. Refitting starts from a copy of the shipped zoo."""
    target = folder / (f"zoo-{Path(args.data).name}" if args.data else "zoo")
    if not args.retrain and not args.data and read_zoo(target) is None and read_zoo(ZOO_DIR):
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(ZOO_DIR, target)
    return target


REAL_RUNS = "real-films"  # the runs folder's sub-folder holding the real-film zoo


def install_real(runs: Path, settings: DemoSettings) -> list[Path]:
    """The real-film zoo's models beside the phantom zoo's (runs/real-films/<variant>)."""
    from cxr_attention.train.real_zoo import install_real_zoo

    target = runs / REAL_RUNS
    shutil.rmtree(target, ignore_errors=True)
    return install_real_zoo(target, Path(settings.real_zoo)) if settings.real_zoo else []


def record_zoo(settings: DemoSettings, runs: list[Path]) -> None:
    """ZOO.json beside a freshly evaluated zoo: recipe, command, time and the measured figures.

    A model's training time is the sum of the epochs in its shipped history.csv, so a model kept
    from an earlier --retrain keeps its own."""
    from cxr_attention.core.runs import LOCALIZATION, METRICS
    from cxr_attention.train.zoo import write_zoo, zoo_figures

    seconds = _train_seconds(Path(settings.zoo), runs)
    figures = {}
    for run in runs:
        metrics = json.loads((run / METRICS).read_text())
        loc = json.loads((run / LOCALIZATION).read_text())
        control = json.loads((run / "localization_random.json").read_text())
        figures[run.name] = zoo_figures(Path(settings.zoo) / run.name, metrics, loc, control)
        figures[run.name]["train_seconds"] = round(seconds[run.name])
    options = fit_options(Path("<training phantom>"), settings, False)
    options = {k: v for k, v in options.items() if k not in ("data", "progress", "workers")}
    write_zoo(Path(settings.zoo), settings.recipe, options, figures)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="evaluate the shipped demo zoo on a fresh phantom (once) and open the app",
        description=(
            "Draw a synthetic evaluation phantom, install the demo zoo shipped in assets/zoo "
            "(MobileNetV2 and EfficientNet-B0, each with and without spatial attention, trained "
            "on another phantom), evaluate it, score its maps against the lesion masks, write the "
            "comparison report and open the app. A second call opens the app at once. About a "
            "minute on 2 CPU cores; --retrain first trains the zoo again (about an hour)."
        ),
    )
    p.add_argument(
        "--no-app", action="store_true", help="stop after building, do not start the app"
    )
    p.add_argument("--dir", help="demo folder (default: ~/.cache/cxr-attention/demo or ./demo)")
    p.add_argument("--port", type=int, default=8501, help="app port (default 8501)")
    p.add_argument("--headless", action="store_true", help="do not open a browser")
    add_host_flag(p)
    p.add_argument(
        "--retrain",
        action="store_true",
        help="train the zoo again from scratch (the command that made assets/zoo) and ship it",
    )
    p.add_argument(
        "--zoo",
        help="zoo folder to read (default: the shipped one), or to write with --retrain, "
        "--reship or --refit-trust (default: DIR/zoo, never the installation)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="with --retrain or --reship: the real-film zoo of the labelled films at DIR (class "
        "folders or a table; train/presets/pneumonia.yaml), instead of the phantom zoo",
    )
    p.add_argument(
        "--only",
        nargs="+",
        metavar="VARIANT",
        default=[],
        help="with --retrain: train only these variants (e.g. mobilenetv2_100+class), keep the rest",
    )
    p.add_argument(
        "--reship",
        action="store_true",
        help="evaluate the zoo's models here and ship that evaluation and ZOO.json into --zoo, "
        "without training (after a change to how the evaluation is made or recorded)",
    )
    p.add_argument(
        "--refit-trust",
        action="store_true",
        help="fit the zoo's OOD descriptions, temperatures and thresholds again on its training "
        "phantom drawn here, keeping the weights, then --reship (after a change to what the "
        "description holds)",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="evaluate the zoo here again instead of installing its shipped evaluation",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    # Hidden: shrink the demo (tests, very slow machines).
    hidden = argparse.SUPPRESS
    defaults = ZooRecipe()
    p.add_argument("--images", type=int, default=defaults.eval_images, help=hidden)
    p.add_argument("--train-images", type=int, default=defaults.train_images, help=hidden)
    p.add_argument("--size", type=int, default=defaults.size, help=hidden)
    p.add_argument("--preset", default=defaults.preset, help=hidden)
    p.add_argument("--backbones", nargs="+", default=list(defaults.backbones), help=hidden)
    p.add_argument("--epochs", type=int, help=hidden)
    p.add_argument("--image-size", type=int, help=hidden)
    p.add_argument("--batch-size", type=int, help=hidden)
    p.add_argument("--max-train-batches", type=int, help=hidden)
    p.add_argument("--localize-limit", type=int, default=defaults.localize_limit, help=hidden)
    p.add_argument("--n-resamples", type=int, default=DemoSettings.n_resamples, help=hidden)
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> DemoSettings:
    overrides = {
        key: getattr(args, key)
        for key in ("epochs", "image_size", "batch_size", "max_train_batches")
        if getattr(args, key) is not None
    }
    if args.images < 16 or args.train_images < 16:
        raise ConfigError("--images and --train-images must be at least 16 for a demo")
    shipped = None if args.retrain else read_zoo(Path(args.zoo))
    if shipped is None and not args.retrain and Path(args.zoo).resolve() != ZOO_DIR:
        raise ConfigError(
            f"{args.zoo} holds no demo zoo (no ZOO.json): give a folder that `cxr-attention demo "
            "--retrain --zoo DIR` wrote, or add --retrain to train one there (about an hour)"
        )
    if shipped is not None:
        # the shipped zoo decides what it was measured on; the demo repeats that measurement
        recipe = recipe_of(shipped)
        if args.images != ZooRecipe.eval_images:
            recipe = replace(recipe, eval_images=args.images)
    else:
        recipe = ZooRecipe(
            train_images=args.train_images,
            eval_images=args.images,
            size=args.size,
            preset=args.preset,
            backbones=tuple(args.backbones),
            localize_limit=args.localize_limit,
        )
    real = read_zoo(REAL_ZOO_DIR)
    return DemoSettings(
        recipe=recipe,
        zoo=str(Path(args.zoo).expanduser().resolve()),
        zoo_created=str((shipped or {}).get("created", "")),
        real_zoo=str(REAL_ZOO_DIR) if real else "",
        real_zoo_created=str((real or {}).get("created", "")),
        retrain=args.retrain or shipped is None,
        fit_overrides=overrides,
        only=tuple(args.only),
        n_resamples=args.n_resamples,
    )


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir).expanduser() if args.dir else default_dir()
    makes = args.retrain or args.reship or args.refit_trust
    if args.zoo is None:
        args.zoo = str(user_zoo(folder, args) if makes else ZOO_DIR)
    if args.data:
        return make_real_zoo(args, folder)
    settings = settings_from(args)
    try:
        if args.refit_trust:
            refit_zoo_trust(folder, settings, progress=args.progress)
            reship_zoo(folder, settings, progress=args.progress)
        elif args.reship:
            reship_zoo(folder, settings, progress=args.progress)
        elif settings.retrain:
            from cxr_attention.core.training.progress import console_logging

            console_logging()  # one line per epoch from each model's training
            if read_zoo(Path(settings.zoo)) is None and not args.retrain:
                print(
                    f"cxr-attention demo: no zoo in {settings.zoo}: training one (about an hour "
                    "on 2 CPU cores)",
                    file=sys.stderr,
                )
            retrain_zoo(folder, settings, progress=args.progress)
            reship_zoo(folder, settings, progress=args.progress)
        elif args.rebuild or not is_built(folder, settings):
            evaluate_zoo(folder, settings, progress=args.progress, fresh=args.rebuild)
        else:
            print(f"cxr-attention demo: already built in {folder}", file=sys.stderr)
    except OSError as exc:
        raise CxrError(
            f"cannot write the demo into {folder} ({exc.strerror}): pass --dir DIR"
        ) from None
    if makes:
        print(f"cxr-attention demo: the zoo is in {settings.zoo}; use it with "
              f"`cxr-attention demo --zoo {settings.zoo}`")  # fmt: skip
    print(f"cxr-attention demo: ready in {folder}; report: {folder / 'report' / 'report.html'}")
    if args.no_app:
        return 0
    from cxr_attention.train.commands.app import launch_app

    return launch_app(
        folder / "runs", port=args.port, headless=args.headless, host=args.host, debug=args.debug
    )


def make_real_zoo(args: argparse.Namespace, folder: Path) -> int:
    """`--retrain --data DIR` / `--reship --data DIR`: the real-film zoo of the films at DIR."""
    from cxr_attention.core.training.progress import console_logging
    from cxr_attention.train.real_zoo import (
        RealZooRecipe,
        evaluate_real_zoo,
        record_real_zoo,
        ship_real_zoo,
        train_real_zoo,
    )

    if not (args.retrain or args.reship):
        raise ConfigError("--data makes a real-film zoo: add --retrain (train it) or --reship")
    data = Path(args.data).expanduser().resolve()
    zoo = Path(args.zoo).expanduser().resolve()
    if zoo == ZOO_DIR:
        raise ConfigError("--data needs its own --zoo DIR: the phantom zoo's folder is not for it")
    recipe = RealZooRecipe()
    work = folder / f"training-{recipe.collection}"
    try:
        if args.retrain:
            console_logging()
            ship_real_zoo(train_real_zoo(data, work, recipe, args.progress, tuple(args.only)), zoo)
        runs = evaluate_real_zoo(data, zoo, work, recipe, args.progress)
        record_real_zoo(zoo, recipe, runs, data)
    except OSError as exc:
        raise CxrError(
            f"cannot write into {work} or {zoo} ({exc.strerror}): pass --dir DIR"
        ) from None
    print(f"cxr-attention demo: the real-film zoo is in {zoo} ({zoo / 'ZOO.json'})")
    print(
        f"cxr-attention demo: the app shows it with `cxr-attention app --runs {work / 'installed'}`"
    )
    return 0


def refit_zoo_trust(folder: Path, settings: DemoSettings, progress: bool) -> None:
    """Fit every shipped model's OOD description, temperatures and thresholds again on the
    zoo's training phantom drawn here, keeping its weights (after a change to what the
    description holds)."""
    from cxr_attention.train.zoo import refit_shipped, require_shipped

    recipe, zoo = settings.recipe, Path(settings.zoo)
    phantom = folder / "training" / "phantom"
    variants = recipe.variants()
    require_shipped([v.name for v in variants], zoo)  # before minutes of work, not after
    titles = [
        training_phantom_title(recipe),
        *[f"describe {v.name}'s training films again" for v in variants],
    ]
    steps = Steps(titles)
    steps.show_plan(f"cxr-attention demo --refit-trust: the zoo in {zoo}")
    with steps.step(0) as outcome:
        draw_training_phantom(phantom, recipe, progress, outcome)
    for i, variant in enumerate(variants):
        with steps.step(1 + i):
            refit_shipped(zoo / variant.name, phantom)


def reship_zoo(folder: Path, settings: DemoSettings, progress: bool) -> None:
    """Evaluate every model of the zoo here, then ship that evaluation and a new ZOO.json."""
    runs = evaluate_zoo(folder, settings, progress=progress, fresh=True)
    for run in runs:
        ship_evaluation(run, Path(settings.zoo))
    record_zoo(settings, runs)
    _rewrite_marker(folder, replace(settings, zoo_created=read_zoo(Path(settings.zoo))["created"]))


def _train_seconds(zoo: Path, runs: list[Path]) -> dict[str, float]:
    """Each shipped model's training time from its history.csv (the sum of its epochs)."""
    import pandas as pd

    seconds = {}
    for run in runs:
        history = zoo / run.name / "history.csv"
        seconds[run.name] = float(pd.read_csv(history)["seconds"].sum()) if history.is_file() else 0
    return seconds


def _rewrite_marker(folder: Path, settings: DemoSettings) -> None:
    """DEMO.json with the new zoo's date, so that the next call goes straight to the app."""
    marker = folder / MARKER
    record = json.loads(marker.read_text())
    record["settings"] = settings.as_json()
    marker.write_text(json.dumps(record, indent=2) + "\n")
