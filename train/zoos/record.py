"""ZOO.json: what a zoo is, the command that made it, and what its models measured.

A phantom zoo's record keeps, per model ("runs"), its AUC on the evaluation phantom and how its maps
point at the lesions; a films zoo's ("figures") its AUC on the held-out patients with a CI, the
blanking check of its own map, the share of films its OOD warning flags, and the attention effect
(DeLong, paired on the same films, against its backbone's baseline). Both keep the recipe, the fit
options on top of the preset, the machine and the training time of each model (the sum of the
epochs in its shipped history.csv, so a model kept from an earlier --retrain keeps its own).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from cxr_attention.core.errors import RunError
from cxr_attention.train.zoos.recipe import FilmsRecipe, PhantomRecipe, ZooModel

ZOO_FILE = "ZOO.json"
PHANTOM_NOTE = "phantom-trained demo models: synthetic training data, not for patients"


def read_zoo(folder: Path) -> dict[str, Any] | None:
    """ZOO.json, or None when no zoo is shipped here."""
    from cxr_attention.train.zoos.registry import PHANTOM_ZOO, shipped_at

    path = Path(folder) / ZOO_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        command = (shipped_at(folder) or PHANTOM_ZOO).command
        raise RunError(f"{path} cannot be read: rebuild the zoo with `{command}`") from None


def recipe_of(zoo: dict[str, Any]) -> PhantomRecipe:
    """The phantom recipe a ZOO.json records."""
    return PhantomRecipe.from_json(zoo["recipe"])


def train_seconds(zoo: Path, names: list[str]) -> dict[str, float]:
    """Each shipped model's training time from its history.csv (the sum of its epochs)."""
    import pandas as pd

    seconds = {}
    for name in names:
        history = zoo / name / "history.csv"
        seconds[name] = float(pd.read_csv(history)["seconds"].sum()) if history.is_file() else 0.0
    return seconds


def recorded_options(options: dict[str, Any]) -> dict[str, Any]:
    """Fit options as ZOO.json keeps them: without where the data was and how it was shown."""
    return {k: v for k, v in options.items() if k not in ("data", "progress", "workers")}


def describe_machine() -> str:
    import torch

    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, CPU"


def phantom_figures(run: Path, shipped: Path) -> dict[str, Any]:
    """What ZOO.json says of one phantom model, from its evaluation in `run`."""
    metrics = json.loads((run / "metrics.json").read_text())
    localization = json.loads((run / "localization.json").read_text())
    control = json.loads((run / "localization_random.json").read_text())
    return {
        "test_macro_auc": round(metrics["macro_auc"], 4),
        "test_micro_auc": round(metrics["micro_auc"], 4),
        "localization_method": localization["method"],
        "map_stage": localization["map_stage"],
        "pointing_game": round(localization["overall"]["pointing_game"], 4),
        "random_pointing_game": round(control["overall"]["pointing_game"], 4),
        "size_bytes": (shipped / "checkpoint.pt").stat().st_size,
    }


def record_phantom_zoo(
    zoo: Path, command: str, recipe: PhantomRecipe, options: dict, runs: list[Path]
) -> Path:
    """ZOO.json beside a freshly evaluated phantom zoo (its models evaluated in `runs`)."""
    seconds = train_seconds(zoo, [run.name for run in runs])
    figures = {}
    for run in runs:
        figures[run.name] = phantom_figures(run, zoo / run.name)
        figures[run.name]["train_seconds"] = round(seconds[run.name])
    record = {
        "note": PHANTOM_NOTE,
        "command": command,
        "recipe": recipe.as_json(),
        "fit_options": recorded_options(options),
        "machine": describe_machine(),
        "created": time.strftime("%Y-%m-%d"),
        "runs": figures,
    }
    path = zoo / ZOO_FILE
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def films_figures(run: Path, shipped: Path, seconds: float) -> dict[str, Any]:
    """What ZOO.json says of one films model, from its evaluation in `run`."""
    metrics = json.loads((run / "metrics.json").read_text())
    blanking = json.loads((run / "blanking.json").read_text())
    own = blanking.get("own_map") or next(iter(blanking["maps"]))
    labels = metrics["labels"]
    one = metrics["per_class"][labels[0]] if len(labels) == 1 else None  # else the macro AUC
    return {
        "test_auc": one["auc"] if one else metrics["macro_auc"],
        "test_auc_ci": one.get("auc_ci") if one else metrics.get("macro_auc_ci"),
        "n_test_images": metrics["n_images"],
        "n_test_patients": metrics["n_patients"],
        "blanking": {"map": own, **_plain(blanking["maps"][own]["faithfulness"])},
        "flagged": {
            "held-out films": (metrics.get("out_of_distribution") or {}).get("flagged_share"),
            **{k: v["share"] for k, v in json.loads((run / "trust.json").read_text()).items()},
        },
        "lungs": _lung_figures(run),
        "train_seconds": round(seconds),
        "size_mb": round((shipped / "checkpoint.pt").stat().st_size / 2**20, 2),
    }


def _lung_figures(run: Path) -> dict[str, Any] | None:
    """The own map's in-lung figures on the held-out films (localization_lungs.json) beside a
    random map's; None for a zoo evaluated before lung fields existed."""
    path = run / "localization_lungs.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    return {
        "map": report["maps"],
        "n": report["n_images"],
        "peak_inside": report["map"]["peak_inside"],
        "mass_inside": report["map"]["mass_inside"],
        "random_peak_inside": report["random"]["peak_inside"],
        "random_mass_inside": report["random"]["mass_inside"],
    }


def record_films_zoo(
    zoo: Path, command: str, recipe: FilmsRecipe, options: dict, runs: list[Path], data: Path
) -> Path:
    """ZOO.json: recipe, command, time, held-out figures, attention effect and blanking."""
    from cxr_attention import core
    from cxr_attention.core.runs import write_json

    models = {model.name: model for model in recipe.models()}
    seconds = train_seconds(zoo, [run.name for run in runs])
    path = zoo / ZOO_FILE
    write_json(
        path,
        {
            "command": command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
            "package_version": core.__version__,
            "recipe": recipe.as_json(),
            "fit_options": recorded_options(options),
            "data": {"name": Path(data).name, "title": recipe.title},
            "held_out": recipe.held_out,
            "lesion_outlines": "none: no pointing game, IoBB or energy is measured on these films",
            "models": {run.name: _model_record(models[run.name]) for run in runs},
            "figures": {r.name: films_figures(r, zoo / r.name, seconds[r.name]) for r in runs},
            "attention_effect": attention_effect(runs, models),
        },
    )
    return path


def _model_record(model: ZooModel) -> dict[str, Any]:
    """A model's backbone, kind, its own options and (an extra's) note, as ZOO.json keeps them."""
    return {"backbone": model.backbone, "kind": model.kind, "options": model.options} | (
        {"note": model.note} if model.note else {}
    )


def attention_effect(runs: list[Path], models: dict[str, ZooModel]) -> dict[str, Any]:
    """Each attention model's AUC against its backbone's baseline on the same held-out films
    (DeLong's test, paired): {model: {"against": baseline, label: {auc_a (attention), auc_b
    (baseline), difference, ci_low, ci_high, p_value}}}."""
    import pandas as pd

    from cxr_attention.core.metrics.compare import compare_runs_delong

    by_name = {run.name: run for run in runs}
    out = {}
    for run in runs:
        model = models[run.name]
        if model.kind is None or model.backbone not in by_name:
            continue
        labels = json.loads((run / "metrics.json").read_text())["labels"]
        table = compare_runs_delong(
            pd.read_csv(run / "predictions.csv"),
            pd.read_csv(by_name[model.backbone] / "predictions.csv"),
            labels,
        )
        out[run.name] = {"against": model.backbone, **_plain(table.to_dict(orient="index"))}
    return out


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=float))
