"""`cxr-attention study RUN... [--data DATA] [--limit N]`: the attention study of each run.

Writes RUN/study.json (`core.study.run`) and prints one plain table: per run and map, the
pointing game, IoBB accuracy at 0.25 and energy in the truth against the random control, the
faithfulness drop against a random region of the same size, then each run's parameters and CPU
latency against its backbone's baseline.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from cxr_attention.core.explain.localization import MAP_THRESHOLD
from cxr_attention.core.explain.localize_run import TRUTHS

HEADER = (
    "run",
    "map",
    "truth",
    "pointing (random)",
    "IoBB@0.25 (random)",
    "energy (random)",
    "drop (random region)",
    "peak in lungs (random)",
    "mass in lungs (random)",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "study",
        help="the attention study: maps vs truth and random, faithfulness, cost (study.json)",
        description=(
            "For each run: its own attention maps and Grad-CAM scored against boxes or lesion "
            "masks beside the random control, how far a finding's probability falls when the "
            "map's top region is blanked (against a random region of the same size), parameters "
            "and CPU latency against the same backbone without attention. Writes RUN/study.json."
        ),
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders holding checkpoint.pt")
    parser.add_argument("--data", help="dataset folder (default: the one each run was trained on)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="test")
    parser.add_argument("--limit", type=int, help="study only the first N films with truth")
    parser.add_argument("--truth", choices=TRUTHS, default="auto", help="auto: masks on a phantom")
    parser.add_argument(
        "--map-threshold",
        type=float,
        default=MAP_THRESHOLD,
        help="share of each map's range above which it counts as detected (IoBB boxes)",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed forward passes per model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random maps and regions")
    parser.add_argument("--device", help="cpu, cuda, mps for the maps (latency is always CPU)")
    parser.add_argument(
        "--no-lungs", action="store_true", help="do not hold the maps to the lung fields"
    )
    parser.add_argument(
        "--lung-model", metavar="PATH", help="a lung model instead of the shipped one (lungs.pt)"
    )
    parser.add_argument(
        "--segment-lungs",
        action="store_true",
        help="use the lung model even where the collection brings its own lung masks",
    )
    parser.set_defaults(func=run)


def _pair(entry: dict[str, Any], key: str, control: dict[str, Any]) -> str:
    return f"{_num(_value(entry, key))} ({_num(_value(control, key))})"


def _value(summary: dict[str, Any], key: str) -> float | None:
    if key.startswith("iobb@"):
        return (summary.get("iobb_acc") or {}).get(key.removeprefix("iobb@"))
    return summary.get(key)


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def study_rows(study: dict[str, Any]) -> list[tuple[str, ...]]:
    """One table row per map of one study.json dict."""
    rows = []
    for key, entry in study["maps"].items():
        ours = entry["localization"]["overall"] if "localization" in entry else {}
        control = entry["random"]["overall"] if "random" in entry else {}
        lungs = entry.get("lungs") or {}
        faith = entry["faithfulness"]
        rows.append(
            (
                study["run"],
                key + (" (own)" if entry["own"] else ""),
                str(entry["localization"]["n_boxes"]) if ours else "none",
                _pair(ours, "pointing_game", control),
                _pair(ours, "iobb@0.25", control),
                _pair(ours, "energy_in_box", control),
                f"{_num(faith['mean_drop'])} ({_num(faith['random_mean_drop'])})",
                _pair(lungs.get("map", {}), "peak_inside", lungs.get("random", {})),
                _pair(lungs.get("map", {}), "mass_inside", lungs.get("random", {})),
            )
        )
    return rows


def cost_line(study: dict[str, Any]) -> str:
    cost = study["cost"]
    line = (
        f"{study['run']}: {study['mechanism']}; {cost['parameters']:,} parameters "
        f"({cost['attention_parameters']:,} in attention); {cost['latency_ms']:.1f} ms per image "
        f"at {cost['image_size']} px on the CPU"
    )
    if study["kind"] is not None:
        line += (
            f" against {cost['baseline_latency_ms']:.1f} ms without attention "
            f"({100 * cost['latency_overhead']:+.0f} %)"
        )
    return line


def plain_table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def run(args: argparse.Namespace) -> int:
    from cxr_attention.core.lungs.shipped import lung_model_at
    from cxr_attention.core.study.run import run_study

    lung_model = lung_model_at(args.lung_model) if args.lung_model else None
    studies = [
        run_study(
            path,
            data=args.data,
            split=args.split,
            limit=args.limit,
            truth=args.truth,
            batch_size=args.batch_size,
            map_threshold=args.map_threshold,
            seed=args.seed,
            device=args.device,
            repeats=args.repeats,
            lungs=not args.no_lungs,
            lung_model=lung_model,
            own_lungs=not args.segment_lungs,
        )
        for path in args.runs
    ]
    rows = [HEADER] + [row for study in studies for row in study_rows(study)]
    print(plain_table(rows).rstrip())
    print()
    for study in studies:
        print(cost_line(study))
    print("(drop: mean fall of the finding's probability when the region is blanked; figures in")
    print(" each RUN/study.json; latency is a figure on this machine, not a guarantee;")
    print(" in lungs: the share of maps whose peak lies in the film's lung fields, and the mean")
    print(" share of their mass there; truth 'none': films without lesion outlines)")
    for study in studies:
        if study.get("lungs"):
            lungs = study["lungs"]
            print(
                f"{study['run']}: lung fields from {lungs['source']}; {lungs['n_films']} films, "
                f"{lungs['n_left_out']} left out without plausible lung fields"
            )
    return 0
