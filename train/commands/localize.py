"""`cxr-attention localize RUN`: score a run's maps against boxes or phantom masks."""

from __future__ import annotations

import argparse

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
    parser.add_argument("--truth", choices=TRUTHS, default="auto", help="auto: masks on a phantom")
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
    from cxr_attention.core.explain.localize_run import localize_run

    report = localize_run(
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
    overall = report["overall"]
    iobb = ", ".join(f"T={t} {v:.3f}" for t, v in overall["iobb_acc"].items() if v is not None)
    pointing = overall["pointing_game"]
    print(
        f"{report['run']}: {report['maps']} on {report['n_boxes']} boxes "
        f"of {report['n_images']} {report['split']} images: pointing game {pointing:.3f}; "
        f"IoBB accuracy {iobb}"
    )
    return 0
