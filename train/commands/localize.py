"""`cxr-attention localize RUN`: score a run's maps against boxes or phantom masks."""

from __future__ import annotations

import argparse
import sys

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain.localization import MAP_THRESHOLD
from cxr_attention.core.explain.localize_run import LOCALIZE_METHODS, TRUTHS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "localize",
        help="score attention / Grad-CAM maps against boxes or masks (writes localization.json)",
    )
    parser.add_argument("run", metavar="RUN", help="run folder holding checkpoint.pt")
    parser.add_argument("--data", help="dataset folder (default: the one the run was trained on)")
    parser.add_argument("--method", choices=LOCALIZE_METHODS, default="gradcam")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument("--limit", type=int, help="score only the first N images with truth")
    parser.add_argument(
        "--stage", help="attention gate or Grad-CAM stage, e.g. stage3 (default: final)"
    )
    parser.add_argument(
        "--truth",
        choices=(*TRUTHS, "lungs"),
        default="auto",
        help="auto: masks on a phantom, boxes on ChestX-ray14, the lung fields on films without "
        "outlines; lungs: hold the maps to the films' lung fields (localization_lungs.json)",
    )
    parser.add_argument(
        "--lung-model", metavar="PATH", help="a lung model instead of the shipped one (lungs.pt)"
    )
    parser.add_argument(
        "--films",
        nargs="+",
        metavar="FILM_OR_FOLDER",
        help="score these films instead of a split (no labels needed): each film's map of "
        "--label held to its lung fields, or to its mask of the same name in --masks "
        "(localization_films.json)",
    )
    parser.add_argument("--label", help="with --films: whose map (default: the model's first)")
    parser.add_argument(
        "--masks",
        metavar="DIR",
        help="with --films: hold the maps to the masks of the same names in DIR (e.g. outlined "
        "opacities) instead of the lung fields",
    )
    parser.add_argument(
        "--segment-lungs",
        action="store_true",
        help="use the lung model even where the collection brings its own lung masks",
    )
    parser.add_argument(
        "--map-threshold",
        type=float,
        default=MAP_THRESHOLD,
        help="share of each map's range above which it counts as detected (IoBB boxes)",
    )
    parser.add_argument(
        "--ig-steps", type=int, help="path points of integrated_gradients (default 32)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-control", action="store_true", help="skip the random-map control")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random control")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxr_attention.core.explain.localize_run import NoLesionTruth, localize_run

    if args.films:
        return run_films(args)
    if args.masks or args.label:
        raise ConfigError("--masks and --label go with --films FILM_OR_FOLDER...")
    if args.truth == "lungs":
        return run_lungs(args)
    try:
        report = _localize(args, localize_run)
    except NoLesionTruth:
        if args.truth != "auto":
            raise
        print(
            f"cxr-attention localize: {args.split} films without lesion outlines: holding the "
            "maps to the lung fields instead",
            file=sys.stderr,
        )
        return run_lungs(args)
    overall = report["overall"]
    iobb = ", ".join(f"T={t} {v:.3f}" for t, v in overall["iobb_acc"].items() if v is not None)
    pointing = overall["pointing_game"]
    print(
        f"{report['run']}: {report['maps']} on {report['n_boxes']} boxes "
        f"of {report['n_images']} {report['split']} images: pointing game {pointing:.3f}; "
        f"IoBB accuracy {iobb}"
    )
    return 0


def run_lungs(args: argparse.Namespace) -> int:
    """`--truth lungs`: the maps held to the lung fields (localization_lungs.json)."""
    from cxr_attention.core.explain.lung_run import localize_lungs
    from cxr_attention.core.lungs.shipped import lung_model_at

    report = localize_lungs(
        args.run,
        data=args.data,
        method=args.method,
        split=args.split,
        limit=args.limit,
        stage=args.stage,
        lung_model=lung_model_at(args.lung_model) if args.lung_model else None,
        own_lungs=not args.segment_lungs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    )
    ours, control = report["map"], report["random"]
    print(
        f"{report['run']}: {report['maps']} on {report['n_images']} {report['split']} films "
        f"(lung fields from {report['lungs']['source']}): peak inside the lungs "
        f"{ours['peak_inside']:.3f} (random {control['peak_inside']:.3f}), mass inside "
        f"{ours['mass_inside']:.3f} (random {control['mass_inside']:.3f})"
    )
    return 0


def run_films(args: argparse.Namespace) -> int:
    """`--films`: any films held to their lung fields or to given masks."""
    from cxr_attention.core.explain.lung_run import localize_films
    from cxr_attention.core.lungs.shipped import lung_model_at

    report = localize_films(
        args.run,
        args.films,
        label=args.label,
        method=args.method,
        stage=args.stage,
        masks=args.masks,
        lung_model=lung_model_at(args.lung_model) if args.lung_model else None,
        own_lungs=not args.segment_lungs,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    )
    ours, control = report["map"], report["random"]
    where = "the masks given" if args.masks else "the lung fields"
    print(
        f"{report['run']}: {report['maps']} of {report['label']} on {report['n_images']} films "
        f"({report['lungs']['source']}; {report['lungs']['n_left_out']} left out): peak inside "
        f"{where} {ours['peak_inside']:.3f} (random {control['peak_inside']:.3f}), mass inside "
        f"{ours['mass_inside']:.3f} (random {control['mass_inside']:.3f})"
    )
    return 0


def _localize(args: argparse.Namespace, localize_run):
    return localize_run(
        args.run,
        data=args.data,
        method=args.method,
        split=args.split,
        limit=args.limit,
        stage=args.stage,
        truth=args.truth,
        batch_size=args.batch_size,
        map_threshold=args.map_threshold,
        control=not args.no_control,
        seed=args.seed,
        device=args.device,
        ig_steps=args.ig_steps,
    )
