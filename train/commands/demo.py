"""`cxr-attention demo [--no-app] [--dir DIR]`: a working demo on a fresh machine, with no download.

Builds the phantom (synthetic radiographs with known lesions), its image cache, and a demo zoo —
MobileNetV2 and EfficientNet-B0, each with and without spatial attention, trained with the `demo`
preset — evaluates every model, scores its maps against the lesion masks, writes the comparison
report and opens the app. Everything lands in DIR (default ~/.cache/cxr-attention/demo, or ./demo
when the home folder is not writable):

    DIR/phantom/          the synthetic dataset (ChestX-ray14 layout + masks/)
    DIR/runs/<variant>/   one run folder per model (checkpoint, metrics, localization)
    DIR/report/           report.md, report.html
    DIR/DEMO.json         what was built, with which settings; its presence makes a second call
                          go straight to the app

Sized to finish within 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, CxrError
from train.commands.app import add_host_flag
from train.commands.sweep import Steps, Variant, grid, set_threads, train_and_evaluate

DEMO_BACKBONES = ("mobilenetv2_100", "efficientnet_b0")
MARKER = "DEMO.json"
DEMO_VERSION = 1  # bump when the demo's recipe changes: older demo folders are rebuilt


@dataclass(frozen=True)
class DemoSettings:
    """What the demo builds; DEMO.json records it so that a changed recipe rebuilds."""

    images: int = 800  # phantom images; ~3 min for the whole demo on 2 CPU cores
    size: int = 128  # phantom image side in pixels
    seed: int = 0
    backbones: tuple[str, ...] = DEMO_BACKBONES
    preset: str = "demo"  # train/presets/demo.yaml
    fit_overrides: dict[str, Any] = field(default_factory=dict)  # on top of the preset
    localize_limit: int = 160  # test images with lesion masks whose maps are scored, per run
    n_resamples: int = 200  # bootstrap resamples for the CIs
    version: int = DEMO_VERSION

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["backbones"] = list(self.backbones)
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


def build_phantom(folder: Path, settings: DemoSettings, progress: bool) -> bool:
    """The phantom in folder/phantom unless one with these settings is there; True if built.

    A new phantom makes every model trained on the old one stale, so folder/runs is removed.
    """
    from core.data.phantom import GENERATOR_VERSION, generate_phantom
    from core.progress import progress_bar

    root = folder / "phantom"
    manifest = root / "PHANTOM.json"
    if manifest.is_file():
        try:
            made = json.loads(manifest.read_text())
        except (OSError, ValueError):
            made = {}
        wanted = {
            "n": settings.images,
            "size": settings.size,
            "seed": settings.seed,
            "generator_version": GENERATOR_VERSION,
        }
        if all(made.get(k) == v for k, v in wanted.items()):
            return False
    shutil.rmtree(folder / "runs", ignore_errors=True)
    with progress_bar(total=settings.images, desc="phantom", unit="img", enabled=progress) as bar:
        generate_phantom(
            root, settings.images, settings.size, settings.seed, overwrite=True, progress=bar.update
        )
    return True


def build_cache(folder: Path, image_size: int, progress: bool) -> None:
    from core.data.cache import build_cache as build
    from core.data.chestxray14 import open_dataset

    build(open_dataset(folder / "phantom"), image_size, progress=progress)


def localize(run: Path, variant: Variant, limit: int) -> str:
    """Score the run's maps on the lesion masks: attention maps, or Grad-CAM for a baseline."""
    try:
        from core.explain.localize_run import localize_run
    except ImportError:
        return "skipped (localization not available)"
    method = "attention" if variant.attention else "gradcam"
    report = localize_run(run, method=method, limit=limit)
    return f"{method}: pointing game {report['overall']['pointing_game']:.2f}"


def fit_options(folder: Path, settings: DemoSettings, progress: bool) -> dict[str, Any]:
    from train.commands.fit import load_preset

    options = load_preset(settings.preset) | dict(settings.fit_overrides)
    # the cache makes loading nearly free: worker processes would only take cores from training
    options |= {"data": str(folder / "phantom"), "workers": 0, "progress": progress}
    return options


def build_demo(folder: Path, settings: DemoSettings, progress: bool = True) -> list[Path]:
    """Every step that is not done yet; returns the run folders. Writes DEMO.json last."""
    from core.report import compare_runs
    from train.commands.sweep import variant_options

    variants = grid(settings.backbones)
    options = fit_options(folder, settings, progress)
    image_size = int(options.get("image_size", 224))
    titles = [f"phantom: {settings.images} synthetic radiographs at {settings.size} px"]
    titles.append(f"image cache at {image_size} px")
    titles += [f"train and evaluate {v.name}" for v in variants]
    titles += [f"localize maps of {v.name}" for v in variants]
    titles.append("compare -> report")
    steps = Steps(titles)
    threads = set_threads()
    steps.show_plan(f"cxr-attention demo: building in {folder} ({threads} threads)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)

    with steps.step(0) as outcome:
        if not build_phantom(folder, settings, progress):
            outcome["note"] = "already built, skipped"
    with steps.step(1):
        build_cache(folder, image_size, progress)
    runs = []
    for i, variant in enumerate(variants):
        with steps.step(2 + i) as outcome:
            plan = variant_options(options, variant, folder / "runs")
            run, skipped = train_and_evaluate(plan, settings.n_resamples, progress)
            outcome["note"] = "already done, skipped" if skipped else "done"
            runs.append(run)
    for i, (variant, run) in enumerate(zip(variants, runs, strict=True)):
        with steps.step(2 + len(variants) + i) as outcome:
            if (run / "localization.json").is_file():
                outcome["note"] = "already done, skipped"
            else:
                outcome["note"] = localize(run, variant, settings.localize_limit)
    with steps.step(len(titles) - 1):
        paths = compare_runs(runs, folder / "report", n_resamples=settings.n_resamples)
    record = {"settings": settings.as_json(), "runs": [r.name for r in runs]}
    record["report"] = str(paths.html)
    (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return runs


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="build the phantom and the demo zoo (if absent), evaluate it, open the app",
        description=(
            "Build a synthetic dataset and four small models (MobileNetV2 and EfficientNet-B0, "
            "each with and without spatial attention), evaluate them, score their maps against "
            "the lesion masks, write the comparison report and open the app. A second call opens "
            "the app at once. About 3 minutes on 2 CPU cores."
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
        "--rebuild",
        action="store_true",
        help="check every step again (finished ones are still kept)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    # Hidden: shrink the demo (tests, very slow machines).
    hidden = argparse.SUPPRESS
    p.add_argument("--images", type=int, default=DemoSettings.images, help=hidden)
    p.add_argument("--size", type=int, default=DemoSettings.size, help=hidden)
    p.add_argument("--preset", default=DemoSettings.preset, help=hidden)
    p.add_argument("--backbones", nargs="+", default=list(DEMO_BACKBONES), help=hidden)
    p.add_argument("--epochs", type=int, help=hidden)
    p.add_argument("--image-size", type=int, help=hidden)
    p.add_argument("--max-train-batches", type=int, help=hidden)
    p.add_argument("--localize-limit", type=int, default=DemoSettings.localize_limit, help=hidden)
    p.add_argument("--n-resamples", type=int, default=DemoSettings.n_resamples, help=hidden)
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> DemoSettings:
    overrides = {
        key: getattr(args, key)
        for key in ("epochs", "image_size", "max_train_batches")
        if getattr(args, key) is not None
    }
    if args.images < 16:
        raise ConfigError(f"--images {args.images} is too few for a demo: use at least 16")
    return DemoSettings(
        images=args.images,
        size=args.size,
        backbones=tuple(args.backbones),
        preset=args.preset,
        fit_overrides=overrides,
        localize_limit=args.localize_limit,
        n_resamples=args.n_resamples,
    )


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir).expanduser() if args.dir else default_dir()
    settings = settings_from(args)
    if not args.rebuild and is_built(folder, settings):
        print(f"cxr-attention demo: already built in {folder}", file=sys.stderr)
    else:
        try:
            build_demo(folder, settings, progress=args.progress)
        except OSError as exc:
            raise CxrError(
                f"cannot write the demo into {folder} ({exc.strerror}): pass --dir DIR"
            ) from None
        print(f"cxr-attention demo: built in {folder}; report: {folder / 'report' / 'report.html'}")
    if args.no_app:
        return 0
    from train.commands.app import launch_app

    return launch_app(
        folder / "runs", port=args.port, headless=args.headless, host=args.host, debug=args.debug
    )
