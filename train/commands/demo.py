"""`cxr-attention demo [--no-app] [--dir DIR] [--retrain]`: a working demo on a fresh machine, offline.

The demo zoo — MobileNetV2 and EfficientNet-B0, each as a baseline, with the paper's spatial gate and
with class-specific attention, trained on the synthetic phantom — ships in assets/zoo; every other
zoo of the registry (`train.zoos.registry`: today the real-film zoo in assets/zoo-pneumonia) ships
beside it. The demo draws an evaluation phantom with a seed no model trained on (as many films as
the zoo was measured on), installs the zoo with its evaluation on those very films (or, when the
films differ or with `--rebuild`, evaluates every model and scores its maps against the lesion
masks here), writes the comparison report, installs the other zoos with their shipped evaluation
and opens the app (`train.zoos.demo_folder`). Everything lands in DIR (default
~/.cache/cxr-attention/demo, or ./demo when the home folder is not writable).

Making a zoo (`train.zoos.make`) writes into --zoo (default DIR/zoo, never the installation):
`--retrain` trains the phantom zoo again (the recorded command that made assets/zoo; about an hour
on 2 CPU cores) in DIR/training, `--reship` evaluates it and records ZOO.json again, `--refit-trust`
fits its trust again; with `--data DIR` they make the zoo of real films at DIR instead.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from cxr_attention.core.errors import ConfigError, CxrError
from cxr_attention.train.commands.app import add_host_flag
from cxr_attention.train.zoos.demo_folder import DemoSettings, default_dir, shipped_beside
from cxr_attention.train.zoos.recipes import PHANTOM
from cxr_attention.train.zoos.registry import PHANTOM_ZOO, films_zoo_for, shipped_at

OVERRIDES = ("epochs", "image_size", "batch_size", "max_train_batches")  # hidden, on the preset


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="evaluate the shipped demo zoo on a fresh phantom (once) and open the app",
        description=(
            "Draw a synthetic evaluation phantom, install the demo zoo shipped in assets/zoo "
            "(MobileNetV2 and EfficientNet-B0, each with and without spatial attention, trained "
            "on another phantom), evaluate it, score its maps against the lesion masks, write the "
            "comparison report, install the real-film zoo beside it and open the app. A second "
            "call opens the app at once. About a minute on 2 CPU cores; --retrain first trains "
            "the zoo again (about an hour)."
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
    # Hidden: shrink the demo (tests, very slow machines). The fit options also shrink --data.
    hidden = argparse.SUPPRESS
    p.add_argument("--images", type=int, default=PHANTOM.eval_images, help=hidden)
    p.add_argument("--train-images", type=int, default=PHANTOM.train_images, help=hidden)
    p.add_argument("--size", type=int, default=PHANTOM.size, help=hidden)
    p.add_argument("--preset", default=PHANTOM.preset, help=hidden)
    p.add_argument("--backbones", nargs="+", default=list(PHANTOM.backbones), help=hidden)
    p.add_argument("--epochs", type=int, help=hidden)
    p.add_argument("--image-size", type=int, help=hidden)
    p.add_argument("--batch-size", type=int, help=hidden)
    p.add_argument("--max-train-batches", type=int, help=hidden)
    p.add_argument("--localize-limit", type=int, default=PHANTOM.localize_limit, help=hidden)
    p.add_argument("--n-resamples", type=int, default=DemoSettings.n_resamples, help=hidden)
    p.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> dict[str, int]:
    return {key: getattr(args, key) for key in OVERRIDES if getattr(args, key) is not None}


def settings_from(args: argparse.Namespace) -> DemoSettings:
    """The phantom zoo's demo: the recipe its ZOO.json records, or the flags' for a new one."""
    from cxr_attention.train.zoos.record import read_zoo, recipe_of

    if args.images < 16 or args.train_images < 16:
        raise ConfigError("--images and --train-images must be at least 16 for a demo")
    shipped = None if args.retrain else read_zoo(Path(args.zoo))
    if shipped is None and not args.retrain and Path(args.zoo).resolve() != PHANTOM_ZOO.folder:
        raise ConfigError(
            f"{args.zoo} holds no demo zoo (no ZOO.json): give a folder that `cxr-attention demo "
            "--retrain --zoo DIR` wrote, or add --retrain to train one there (about an hour)"
        )
    if shipped is not None:
        # the shipped zoo decides what it was measured on; the demo repeats that measurement
        recipe = recipe_of(shipped)
        if args.images != PHANTOM.eval_images:
            recipe = replace(recipe, eval_images=args.images)
    else:
        recipe = replace(
            PHANTOM.on_backbones(tuple(args.backbones)),
            train_images=args.train_images,
            eval_images=args.images,
            size=args.size,
            preset=args.preset,
            localize_limit=args.localize_limit,
        )
    return DemoSettings(
        recipe=recipe,
        zoo=str(Path(args.zoo).expanduser().resolve()),
        zoo_created=str((shipped or {}).get("created", "")),
        beside=shipped_beside(),
        retrain=args.retrain or shipped is None,
        fit_overrides=overrides_from(args),
        only=tuple(args.only),
        n_resamples=args.n_resamples,
    )


def user_zoo(folder: Path, args: argparse.Namespace) -> Path:
    """Where a zoo that is made or refitted goes when --zoo is not given: DIR/zoo (DIR/zoo-<data>
    for a real-film zoo), never the installation. Refitting starts from a copy of the shipped zoo."""
    from cxr_attention.train.zoos.record import read_zoo

    target = folder / (f"zoo-{Path(args.data).name}" if args.data else "zoo")
    copies = not args.retrain and not args.data and read_zoo(target) is None
    if copies and read_zoo(PHANTOM_ZOO.folder):
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(PHANTOM_ZOO.folder, target)
    return target


def run(args: argparse.Namespace) -> int:
    # The zoo's making (the training stack, seconds of imports) is imported where a zoo is made:
    # a demo that is already built goes straight to the app.
    from cxr_attention.train.zoos.demo_folder import build_demo, is_built

    folder = Path(args.dir).expanduser() if args.dir else default_dir()
    makes = args.retrain or args.reship or args.refit_trust
    if args.zoo is None:
        args.zoo = str(user_zoo(folder, args) if makes else PHANTOM_ZOO.folder)
    if args.data:
        return make_films(args, folder)
    settings = settings_from(args)
    try:
        if args.refit_trust:
            from cxr_attention.train.zoos.make import refit_phantom

            refit_phantom(folder, settings, progress=args.progress)
        elif args.reship:
            from cxr_attention.train.zoos.make import reship_phantom

            reship_phantom(folder, settings, progress=args.progress)
        elif settings.retrain:
            from cxr_attention.core.training.progress import console_logging

            console_logging()  # one line per epoch from each model's training
            if not args.retrain:
                print(
                    f"cxr-attention demo: no zoo in {settings.zoo}: training one (about an hour "
                    "on 2 CPU cores)",
                    file=sys.stderr,
                )
            from cxr_attention.train.zoos.make import retrain_phantom

            retrain_phantom(folder, settings, progress=args.progress)
        elif args.rebuild or not is_built(folder, settings):
            build_demo(folder, settings, progress=args.progress, fresh=args.rebuild)
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


def make_films(args: argparse.Namespace, folder: Path) -> int:
    """`--retrain --data DIR` / `--reship --data DIR`: the real-film zoo of the films at DIR."""
    from cxr_attention.core.training.progress import console_logging
    from cxr_attention.train.zoos.make import make_films_zoo
    from cxr_attention.train.zoos.record import read_zoo

    if not (args.retrain or args.reship):
        raise ConfigError("--data makes a real-film zoo: add --retrain (train it) or --reship")
    data = Path(args.data).expanduser().resolve()
    zoo = Path(args.zoo).expanduser().resolve()
    registered = shipped_at(zoo)
    if registered is not None and not registered.learns_films:
        raise ConfigError("--data needs its own --zoo DIR: the phantom zoo's folder is not for it")
    recorded = ((read_zoo(zoo) or {}).get("recipe") or {}).get("collection")
    entry = films_zoo_for(zoo, recorded)
    work = folder / f"training-{entry.name}"
    if args.retrain:
        console_logging()
    try:
        make_films_zoo(
            entry, data, zoo, work, args.retrain, overrides_from(args), tuple(args.only),
            args.progress,
        )  # fmt: skip
    except OSError as exc:
        raise CxrError(
            f"cannot write into {work} or {zoo} ({exc.strerror}): pass --dir DIR"
        ) from None
    print(f"cxr-attention demo: the real-film zoo is in {zoo} ({zoo / 'ZOO.json'})")
    print(
        f"cxr-attention demo: the app shows it with `cxr-attention app --runs {work / 'installed'}`"
    )
    return 0
