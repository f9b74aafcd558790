"""`cxr-attention evaluate RUN... [--data DATA] [--split test]`: predictions.csv and metrics.json."""

from __future__ import annotations

import argparse
import math
import sys

# Literals, not imports from core.evaluation (which loads torch): `--help` stays fast.
SPLITS = ("train", "val", "test")
DEFAULT_BATCH_SIZE = 64


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score a split with a run's checkpoint (writes predictions.csv and metrics.json)",
        description=(
            "Score every image of a split with RUN/checkpoint.pt and write RUN/predictions.csv and "
            "RUN/metrics.json (AUCs with 95%% patient-bootstrap CIs, early lift, operating points at "
            "the thresholds chosen on validation, calibration, subgroups)."
        ),
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s) holding checkpoint.pt")
    p.add_argument("--data", help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--split", choices=SPLITS, default="test", help="split to score (default test)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="images per batch")
    p.add_argument(
        "--n-resamples", type=int, default=1000, help="bootstrap resamples by patient (0 = no CIs)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    p.add_argument(
        "--workers", type=int, help="decoding processes (default: none with a cache, else 1/core)"
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def _fmt(value, ci) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    lo, hi = ci if ci else (None, None)
    shown = all(isinstance(b, (int, float)) and not math.isnan(b) for b in (lo, hi))
    interval = f" [{lo:.3f}, {hi:.3f}]" if shown else ""  # no interval without resamples
    return f"{value:.3f}{interval}"


def summary_line(metrics: dict) -> str:
    """One line per run: micro and macro AUC with CIs, images, data source."""
    return (
        f"{metrics['run']}: micro-AUC {_fmt(metrics['micro_auc'], metrics.get('micro_auc_ci'))}, "
        f"macro-AUC {_fmt(metrics['macro_auc'], metrics.get('macro_auc_ci'))} on "
        f"{metrics['n_images']} {metrics['split']} images of {metrics['n_patients']} patients "
        f"({metrics['data']['source']})"
    )


def trust_lines(metrics: dict) -> list[str]:
    """Calibration before and after temperature scaling, and the share flagged out of
    distribution (each only when the checkpoint has it)."""
    lines = []
    calibration = metrics.get("calibration") or {}
    before = calibration.get("before_scaling")
    if calibration.get("temperature") and before:
        lines.append(
            f"  calibration (temperatures fitted on validation): ECE {_num(before.get('ece'))} -> "
            f"{_num(calibration.get('ece'))}, Brier {_num(before.get('brier'))} -> "
            f"{_num(calibration.get('brier'))}"
        )
    elif calibration:
        lines.append(
            f"  calibration: ECE {_num(calibration.get('ece'))}, Brier "
            f"{_num(calibration.get('brier'))} (raw sigmoid: the checkpoint has no temperatures)"
        )
    ood = metrics.get("out_of_distribution")
    if ood:
        lines.append(
            f"  out of distribution: {ood['n_flagged']} of {metrics['n_images']} images flagged "
            f"({100 * ood['flagged_share']:.1f}%; threshold passes "
            f"{100 * ood['quantile']:.1f}% of validation films)"
        )
    return lines


def _num(value) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.4f}"
    )


def run(args: argparse.Namespace) -> int:
    from cxr_attention.core.evaluation import evaluate_run

    for run_dir in args.runs:
        metrics = evaluate_run(
            run_dir,
            data=args.data,
            split=args.split,
            batch_size=args.batch_size,
            n_resamples=args.n_resamples,
            seed=args.seed,
            device=args.device,
            num_workers=args.workers,
            progress=args.progress,
        )
        print(summary_line(metrics))
        for line in trust_lines(metrics):
            print(line)
        print(f"  wrote {run_dir}/predictions.csv and metrics.json", file=sys.stderr)
    return 0
