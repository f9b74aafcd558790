"""Ways to keep a real-film model's evidence inside the lungs, measured on VALIDATION films (issue 36).

Each recipe trains one model on the paediatric pneumonia films (train/presets/pneumonia.yaml: 128
px, seeded split by patient, the same budget for every recipe) with one way of keeping its evidence
inside, then measures, never on a test split:

- on the validation patients: macro AUC, BCE loss, expected calibration error before and after the
  temperatures (`fit` fits them on validation), and where the maps lie against the children's lung
  fields as the lung model finds them (`localize --truth lungs --split val`), and the blanking
  check (`core.study.open_blanking` on the validation films with pneumonia);
- on ../shared/realdata-lungs' adult films with their manual lung masks: where the Pneumonia map
  peaks on the films with tuberculosis (`localize --films ... `, their own masks), and, on the
  normal films with opacities painted into their lungs (benchmarks/paint_opacities.py, the first 80),
  whether it peaks inside the painted opacity (`--masks`): a proxy for "inside the opacity";
- cost: training minutes (history.csv) and CPU latency.

    python benchmarks/lung_recipes.py --data ../shared/realdata-pneumonia \\
        --adult ../shared/realdata-lungs --out DIR [--recipes none mask ...] [--epochs E]
    python benchmarks/lung_recipes.py ... --existing "baseline: mask=ZOO_RUNS/mobilenetv2_100" ...

(`--existing` measures run folders trained elsewhere, such as the zoo's own runs, the same way.)

Every fit is the `cxr-attention fit` command printed beside its row; a recipe whose run folder
already holds lungs_recipe.json is not trained or measured again. Prints one Markdown table
(docs/lung-prior.md keeps it). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from paint_opacities import opacified_adults  # beside this script

# The class head where features are local (stage 2, pooled on the peak, maps that turn with the
# film): the phantom zoo's recipe, which alone does not carry over to real films (issue 36).
CLASS = [
    "--attention-kind", "class", "--head-stage", "-3", "--attention-temperature", "99",
    "--attention-lambda", "0.3", "--map-equivariance", "0.05",
]  # fmt: skip
# The zoo's class recipe: the film masked outside its lung fields, the class map held by the term.
MASKED_CLASS = [*CLASS, "--lung-prior", "mask", "--lung-weight", "1.0"]
RECIPES: dict[str, list[str]] = {
    "class: nothing": CLASS,
    "class: crop": [*CLASS, "--lung-prior", "crop"],
    "class: mask": [*CLASS, "--lung-prior", "mask"],
    "class: lung term 1": [*CLASS, "--lung-weight", "1.0"],
    "class: mask + lung term 1": MASKED_CLASS,
    # The same at the films' own 224 px: a 28 x 28 class map instead of 16 x 16.
    "class: mask + lung term 1, 224 px": [*MASKED_CLASS, "--image-size", "224"],
    # The class head pooled harder on its peak (CSRA's lambda: 0.3 above): more of the logit
    # comes from the single most telling place, as in multiple-instance pooling.
    "class: mask + lung term 1, lambda 1": [*MASKED_CLASS, "--attention-lambda", "1.0"],
    "class: mask + lung term 1, lambda 3": [*MASKED_CLASS, "--attention-lambda", "3.0"],
    # Maps asked harder to turn with the film (0.05 above), and the map held harder inside.
    "class: mask + lung term 1, equivariance 0.2": [*MASKED_CLASS, "--map-equivariance", "0.2"],
    "class: mask + lung term 2": [*CLASS, "--lung-prior", "mask", "--lung-weight", "2.0"],
    "baseline: nothing": [],
    "baseline: mask": ["--lung-prior", "mask"],
    "baseline: crop": ["--lung-prior", "crop"],
    "baseline: lung term 1": ["--lung-weight", "1.0"],
    "baseline: mask + lung term 1": ["--lung-prior", "mask", "--lung-weight", "1.0"],
    "baseline: mask + lung term 2": ["--lung-prior", "mask", "--lung-weight", "2.0"],
    "gate: nothing": ["--attention"],
    "gate: mask": ["--attention", "--lung-prior", "mask"],
}
RESULT = "lungs_recipe.json"


def folder_name(recipe: str) -> str:
    return recipe.replace(": ", "-").replace(" + ", "+").replace(" ", "-")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cxr_attention.train.cli", *args]


def run(command: list[str]) -> str:
    """Run a CLI command, fail loudly, return its stdout."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def measure(run_dir: Path, data: Path, adult: Path, opacified: tuple[Path, Path]) -> dict[str, Any]:
    from cxr_attention.core.explain.localize_run import own_map_method
    from cxr_attention.core.models.checkpoint import read_checkpoint_data
    from cxr_attention.core.study.open_blanking import run_open_blanking

    method = own_map_method(run_dir)
    history = pd.read_csv(run_dir / "history.csv")
    best = history.loc[history["val_macro_auc"].idxmax()]
    calibration = read_checkpoint_data(run_dir / "checkpoint.pt").get("calibration") or {}
    out: dict[str, Any] = {
        "method": method,
        "val_auc": float(best["val_macro_auc"]),
        "val_loss": float(best["val_loss"]),
        "best_epoch": int(best["epoch"]),
        "train_minutes": float(history["seconds"].sum() / 60),
        "calibration": calibration.get("validation") or calibration,
    }
    for name, args in {
        "children_val": ["--truth", "lungs", "--split", "val", "--data", str(data)],
        "adult_tb": ["--films", *map(str, sorted((adult / "films").glob("*_1.png")))],
        "adult_opacity": ["--films", str(opacified[0]), "--masks", str(opacified[1])],
    }.items():
        run(cli("localize", str(run_dir), "--method", method, *args))
        report_file = (
            "localization_lungs.json" if name == "children_val" else "localization_films.json"
        )
        report = json.loads((run_dir / report_file).read_text())
        out[name] = {"map": report["map"], "random": report["random"], "lungs": report["lungs"]}
    blanking = run_open_blanking(run_dir, data=data, split="val")
    own = blanking.get("own_map") or next(iter(blanking["maps"]))
    out["blanking"] = {"map": own, **blanking["maps"][own]["faithfulness"]}
    return out


def row(recipe: str, result: dict[str, Any]) -> str:
    c, a, o = result["children_val"], result["adult_tb"], result["adult_opacity"]
    cal = result.get("calibration") or {}
    ece = cal.get("ece_before"), cal.get("ece_after")
    ece_text = " / ".join("-" if v is None else f"{v:.3f}" for v in ece)
    b = result["blanking"]
    return (
        f"| {recipe} | {result['val_auc']:.4f} | {result['val_loss']:.4f} | {ece_text} "
        f"| {c['map']['peak_inside']:.2f} ({c['random']['peak_inside']:.2f}) "
        f"| {c['map']['mass_inside']:.2f} "
        f"| {a['map']['peak_inside']:.2f} ({a['random']['peak_inside']:.2f}) "
        f"| {o['map']['peak_inside']:.2f} ({o['random']['peak_inside']:.2f}) "
        f"| {b['mean_drop']:.3f} vs {b['random_mean_drop']:.3f} "
        f"| {result['train_minutes']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--adult", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--backbone", default="mobilenetv2_100")
    parser.add_argument("--threads", type=int)
    parser.add_argument(
        "--existing",
        nargs="+",
        default=[],
        metavar="LABEL=RUN",
        help="measure run folders trained elsewhere (a zoo's runs) as rows LABEL, untrained here",
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"--data {args.data} is not a folder: give the paediatric pneumonia films")
    args.out.mkdir(parents=True, exist_ok=True)
    opacified = opacified_adults(args.adult, args.out)
    lines = []
    for item in args.existing:
        label, _, folder = item.partition("=")
        result_file = args.out / f"{folder_name(label)}.json"
        if not result_file.is_file():
            result = measure(Path(folder), args.data, args.adult, opacified)
            result["command"] = f"(trained elsewhere: {folder})"
            result_file.write_text(json.dumps(result, indent=2, default=float) + "\n")
        lines.append(row(label, json.loads(result_file.read_text())))
        print(lines[-1], flush=True)
    for recipe in args.recipes if not args.existing else []:
        folder = args.out / folder_name(recipe)
        command = cli(
            "fit", "--preset", "pneumonia", "--data", str(args.data), "--backbone", args.backbone,
            "--epochs", str(args.epochs), "--workers", "0", "--no-progress", "--out", str(folder),
            *RECIPES[recipe], *(["--threads", str(args.threads)] if args.threads else []),
        )  # fmt: skip
        if not (folder / RESULT).is_file():
            started = time.perf_counter()
            if not (folder / "checkpoint.pt").is_file() or (folder / "last.pt").is_file():
                run(command)
            result = measure(folder, args.data, args.adult, opacified)
            result["command"] = "cxr-attention " + shlex.join(command[3:])
            result["measure_minutes"] = (time.perf_counter() - started) / 60
            (folder / RESULT).write_text(json.dumps(result, indent=2, default=float) + "\n")
        result = json.loads((folder / RESULT).read_text())
        lines.append(row(recipe, result))
        print(lines[-1], flush=True)
    print()
    print(
        "| recipe | val AUC | val loss | ECE before / after T | children: peak in lungs (random) "
        "| mass in lungs | adults (TB): peak in lungs (random) | adults: peak in painted opacity "
        "(random) | blanking: drop vs random | train min |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
