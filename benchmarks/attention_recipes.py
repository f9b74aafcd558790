"""Where should the class-specific head read? Recipes measured on a VALIDATION phantom (issue 24).

Each recipe is the demo zoo's training of MobileNetV2 + class-specific attention (train/presets/
demo.yaml on the 3,000-film training phantom, seed 0, 12 epochs: the same budget for every recipe)
with one change. Each trained run is then scored on the `val` split of a phantom drawn with another
seed (never a test split, never the demo's evaluation seed 2026, never a hidden one):
`cxr-attention evaluate` (macro AUC) and `cxr-attention study` (pointing game, IoBB at 0.1 / 0.25 /
0.5, energy in the lesion, each beside its random control; blanking faithfulness; cost).

    python benchmarks/attention_recipes.py --train TRAIN_PHANTOM --val VAL_PHANTOM --out DIR
        [--recipes stage2 stage2-peak ...] [--backbone mobilenetv2_100] [--threads N]

A recipe whose run folder already holds study.json is not trained again. Prints one Markdown table
(docs/attention-study.md keeps it). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

# Stage 2, pooled on the map's peak (T 99) with lambda 0.3: the first round's choice
MAXMIX: dict[str, Any] = {"head_stage": -3, "attention_temperature": 99.0, "attention_lambda": 0.3}

# One change each against the shipped class model (head on stage 3: --head-stage -2, T 1, lambda 0.1)
RECIPES: dict[str, dict[str, Any]] = {
    "stage3 (shipped)": {"head_stage": -2},
    "stage2": {"head_stage": -3},
    "stage1": {"head_stage": -4},
    "stage2-peak": {"head_stage": -3, "attention_temperature": 99.0, "attention_lambda": 1.0},
    "stage2-shift": {"head_stage": -3, "max_shift": 0.25},
    "stage3-256px": {"head_stage": -2, "image_size": 256},
    "stage2-peak-shift": {
        "head_stage": -3,
        "attention_temperature": 99.0,
        "attention_lambda": 1.0,
        "max_shift": 0.25,
    },
    "stage2-maxmix": MAXMIX,
    "stage2-t10": {"head_stage": -3, "attention_temperature": 10.0, "attention_lambda": 1.0},
    # finer maps and a longer budget for the chosen pooling (the second round)
    "stage2-maxmix-192px": MAXMIX | {"image_size": 192},
    "stage2-maxmix-24ep": MAXMIX | {"epochs": 24},
    "stage2-maxmix-36ep": MAXMIX | {"epochs": 36},
    "stage2-maxmix-24ep-seed1": MAXMIX | {"epochs": 24, "seed": 1},
    # the third round: maps asked to turn with the film (core/training/equivariance.py; the zoo's)
    "stage2-maxmix-24ep-turn0.05": MAXMIX | {"epochs": 24, "map_equivariance": 0.05},
    "stage2-maxmix-24ep-turn0.1": MAXMIX | {"epochs": 24, "map_equivariance": 0.1},
    "stage2-maxmix-24ep-turn0.05-seed1": MAXMIX
    | {"epochs": 24, "map_equivariance": 0.05, "seed": 1},
    "stage2-maxmix-24ep-turn0.2": MAXMIX | {"epochs": 24, "map_equivariance": 0.2},
    "stage2-maxmix-24ep-turn0.5": MAXMIX | {"epochs": 24, "map_equivariance": 0.5},
    # the paper's spatial gate at the same place: the network ends at stage 2, the gate after it
    "gate-stage2": {"attention_kind": "spatial", "head_stage": -3, "attention_stages": [-1]},
}


def slug(name: str) -> str:
    return name.split(" ")[0]


def train(name: str, options: dict[str, Any], data: Path, out: Path, backbone: str) -> Path:
    from cxr_attention.core.training import FitConfig, fit
    from cxr_attention.train.commands.fit import load_preset

    config = load_preset("demo") | {"attention_kind": "class"} | options
    config |= {
        "data": str(data),
        "backbone": backbone,
        "attention": True,
        "out": str(out / slug(name)),
        "workers": 0,
        "progress": False,
        "resume": True,
    }
    return fit(FitConfig.from_dict(config)).path


def measure(run: Path, val: Path, limit: int) -> dict[str, Any]:
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.study.run import run_study

    metrics = evaluate_run(run, data=val, split="val", n_resamples=0, progress=False, num_workers=0)
    study = run_study(run, data=val, split="val", limit=limit)
    own = study["maps"][study["own_map"]]
    loc, rnd = own["localization"]["overall"], own["random"]["overall"]
    import pandas as pd

    seconds = float(pd.read_csv(run / "history.csv")["seconds"].sum())
    return {
        "macro_auc": metrics["macro_auc"],
        "map": f"{own['map_size'][0]} x {own['map_size'][1]}",
        "pointing": (loc["pointing_game"], rnd["pointing_game"]),
        "iobb": {t: (loc["iobb_acc"][t], rnd["iobb_acc"][t]) for t in ("0.1", "0.25", "0.5")},
        "energy": (loc["energy_in_box"], rnd["energy_in_box"]),
        "faithfulness": (own["faithfulness"]["mean_drop"], own["faithfulness"]["random_mean_drop"]),
        "latency_ms": study["cost"]["latency_ms"],
        "train_minutes": seconds / 60,
        "n_truth": study["data"]["n_truth"],
    }


def pair(values: tuple[float, float]) -> str:
    ours, control = values
    ratio = f", {ours / control:.1f}x" if control else ""
    return f"{ours:.3f} ({control:.3f}{ratio})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="training phantom (seed 0)")
    parser.add_argument(
        "--val", type=Path, required=True, help="validation phantom (its val split)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder of the recipes' runs")
    parser.add_argument("--recipes", nargs="+", default=list(map(slug, RECIPES)))
    parser.add_argument("--backbone", default="mobilenetv2_100")
    parser.add_argument("--limit", type=int, default=300, help="validation films with truth scored")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    chosen = {name: o for name, o in RECIPES.items() if slug(name) in args.recipes}
    for name, options in chosen.items():
        folder = args.out / slug(name)
        if not (folder / "recipe.json").is_file():
            started = time.perf_counter()
            run = train(name, options, args.train, args.out, args.backbone)
            figures = measure(run, args.val, args.limit)
            figures["wall_minutes"] = (time.perf_counter() - started) / 60
            (folder / "recipe.json").write_text(json.dumps({"options": options, **figures}))
    print(
        "| recipe | val macro AUC | map | pointing (random, x) | IoBB@0.1 | IoBB@0.25 | IoBB@0.5 "
        "| energy in lesion | blanking drop (random) | latency | training |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in RECIPES:
        path = args.out / slug(name) / "recipe.json"
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        print(
            f"| {name} | {r['macro_auc']:.3f} | {r['map']} | {pair(r['pointing'])} | "
            + " | ".join(pair(r["iobb"][t]) for t in ("0.1", "0.25", "0.5"))
            + f" | {pair(r['energy'])} | {pair(r['faithfulness'])} | {r['latency_ms']:.1f} ms"
            f" | {r['train_minutes']:.0f} min |"
        )


if __name__ == "__main__":
    main()
