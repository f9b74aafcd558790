"""The demo zoo shipped in assets/zoo: small phantom-trained models, made by one recorded command.

`cxr-attention demo --retrain` rebuilds it (`train.commands.demo.retrain_zoo`): a training
phantom, every variant of the `demo` preset (MobileNetV2 and EfficientNet-B0, each with and without
attention) trained from scratch on the CPU, each checkpoint made compact (8-bit weights,
`core.models.compact`, `ship_run`), then each compact model evaluated on an evaluation phantom drawn
with a seed no model trained on, its maps scored against the lesion masks; ZOO.json records the
recipe, the command, the training time and those figures.

The zoo ships each model's evaluation too (metrics, predictions, localization and its random
control). The phantom generator is deterministic, so `cxr-attention demo` draws the very same films;
when their fingerprint matches the one the evaluation records, it installs that evaluation
(`install_evaluation`) instead of repeating it, and `cxr-attention demo --rebuild` repeats it
anyway (about 35 s on 2 cores), so the figures can be checked against ZOO.json's.

    assets/zoo/ZOO.json
    assets/zoo/<variant>/checkpoint.pt   compact weights, OOD description and temperatures
    assets/zoo/<variant>/config.json, history.csv, timeline/
    assets/zoo/<variant>/metrics.json, predictions.csv, localization*.json   its evaluation
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from cxr_attention.core.errors import RunError

ZOO_DIR = Path(__file__).resolve().parents[1] / "assets" / "zoo"
ZOO_FILE = "ZOO.json"
COMMAND = "cxr-attention demo --retrain --zoo assets/zoo"
SHIPPED = ("checkpoint.pt", "config.json", "history.csv")  # and the timeline/ folder
EVALUATION = (
    "metrics.json",
    "predictions.csv",
    "localization.json",
    "localization_random.json",
    "study.json",  # the attention study (core.study): every map's figures, faithfulness, cost
)


# The class-specific head's recipe (benchmarks/attention_recipes.py, "stage2-maxmix-24ep-turn0.05"):
# the head on stage 2, CSRA pooling with T 99 and lambda 0.3, twice the preset's epochs, and maps
# asked to turn with the film (core/training/equivariance.py), so evidence sits on the finding
CLASS_RECIPE = {
    "head_stage": -3,
    "attention_temperature": 99.0,
    "attention_lambda": 0.3,
    "epochs": 24,
    "map_equivariance": 0.05,
}
# EfficientNet-B0's class head: the same recipe from seed 1 (init, data order, augmentation and the
# training films held out for its validation). From seed 0 its maps pointed into 0.53 of the
# validation phantom's lesions, from seed 1 into 0.68 (docs/attention-study.md, "Maps that turn
# with the film"); MobileNetV2's pointed 0.79 from seed 0.
EFFICIENTNET_CLASS_RECIPE = CLASS_RECIPE | {"seed": 1}


@dataclass(frozen=True)
class ZooRecipe:
    """What the zoo is trained on and evaluated on; ZOO.json keeps it."""

    train_images: int = 3000  # training phantom (train/val lists; its test list is not used)
    eval_images: int = 3000  # the evaluation phantom: as many films as the demo's
    size: int = 256  # both phantoms' side in pixels (the models see 128 px)
    train_seed: int = 0
    eval_seed: int = 2026  # no model ever trains on this seed
    difficulty: str = "teaching"
    preset: str = "demo"  # train/presets/demo.yaml
    backbones: tuple[str, ...] = ("mobilenetv2_100", "efficientnet_b0")
    # attention kinds trained beside each backbone's baseline; a backbone not named: the paper's
    # spatial gate alone. Both backbones also get the class-specific head (CSRA).
    kinds: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "mobilenetv2_100": ("spatial", "class"),
            "efficientnet_b0": ("spatial", "class"),
        }
    )
    # fit options of one variant, on top of the preset. The class-specific head reads stage 2 (16 x
    # 16 at 128 px; the network ends there) and pools its score maps as CSRA does with T = 99 (the
    # maximum over places) and lambda 0.3, so that a label's logit depends on the map's peak, and
    # trains for 24 epochs instead of the preset's 12: the recipe chosen on a validation phantom
    # (docs/attention-study.md, "Where the class head reads"); EfficientNet-B0's from seed 1. On
    # stage 3 the class head's maps lit a quarter of the film.
    variant_options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "mobilenetv2_100+class": dict(CLASS_RECIPE),
            "efficientnet_b0+class": dict(EFFICIENTNET_CLASS_RECIPE),
        }
    )
    localize_limit: int = 300  # test films with lesion masks scored per run

    def variants(self) -> list:
        """The zoo's variants (train.commands.sweep.Variant), each backbone's baseline first."""
        from cxr_attention.train.commands.sweep import grid

        return [v for b in self.backbones for v in grid([b], self.kinds.get(b, ("spatial",)))]

    def options_for(self, variant: str) -> dict[str, Any]:
        return dict(self.variant_options.get(variant, {}))

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values (lists for tuples), as ZOO.json and DEMO.json hold them."""
        return json.loads(json.dumps(asdict(self)))


def read_zoo(folder: Path = ZOO_DIR) -> dict[str, Any] | None:
    """ZOO.json, or None when no zoo is shipped here."""
    path = folder / ZOO_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise RunError(f"{path} cannot be read: rebuild the zoo with `{COMMAND}`") from None


def recipe_of(zoo: dict[str, Any]) -> ZooRecipe:
    """The recipe ZOO.json records; a zoo from before attention kinds had the spatial gate only."""
    data = dict(zoo["recipe"])
    data["backbones"] = tuple(data["backbones"])
    data["kinds"] = {b: tuple(k) for b, k in (data.get("kinds") or {}).items()}
    data.setdefault("variant_options", {})
    return ZooRecipe(**data)


def install_zoo(runs: Path, names: list[str], folder: Path = ZOO_DIR) -> list[Path]:
    """Copy the zoo's runs `names` into `runs`/<name> (replacing what is there); their folders."""
    require_shipped(names, folder)
    installed = []
    for name in names:
        _copy_run(folder / name, runs / name)
        installed.append(runs / name)
    return installed


def require_shipped(names: list[str], folder: Path = ZOO_DIR) -> None:
    """`RunError` naming the first of `names` whose checkpoint the zoo lacks."""
    for name in names:
        if not (folder / name / SHIPPED[0]).is_file():
            raise RunError(f"the demo zoo in {folder} lacks {name}: rebuild it with `{COMMAND}`")


def _copy_run(source: Path, target: Path) -> None:
    """A fresh `target` holding `source`'s SHIPPED files and timeline/."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for filename in SHIPPED:
        shutil.copy2(source / filename, target / filename)
    if (source / "timeline").is_dir():
        shutil.copytree(source / "timeline", target / "timeline")


def ship_run(run: Path, folder: Path) -> Path:
    """Copy one trained run into the zoo with a compact checkpoint; the shipped folder.

    8-bit weights move the features a little, and the OOD description of the original model
    flagged 84 % of unseen phantom films on its 8-bit copy (MobileNetV2 + attention). So the
    copy's OOD description, temperatures and thresholds are fitted again on the copy itself, on
    the run's own training data, then the copy is compacted once more (its int8 weights do not
    change: quantizing dequantized weights gives them back).
    """
    from cxr_attention.core.models.checkpoint import read_checkpoint_data
    from cxr_attention.core.models.compact import compact_checkpoint

    target = folder / run.name
    _copy_run(run, target)
    checkpoint = target / SHIPPED[0]
    torch.save(compact_checkpoint(read_checkpoint_data(checkpoint)), checkpoint)
    refit_shipped(target)
    return target


def refit_shipped(shipped: Path, data: Path | None = None) -> None:
    """Fit a shipped model's OOD description, temperatures and thresholds again on its training
    films (at `data` when not where it was trained), keeping its 8-bit weights."""
    from cxr_attention.core.models.checkpoint import read_checkpoint_data
    from cxr_attention.core.models.compact import compact_checkpoint
    from cxr_attention.core.training.record import refit_trust, rethreshold_ood

    checkpoint = shipped / SHIPPED[0]
    refit_trust(shipped, data)
    torch.save(compact_checkpoint(read_checkpoint_data(checkpoint)), checkpoint)
    rethreshold_ood(shipped, data)  # on the description as stored, in float16


def ship_evaluation(run: Path, folder: Path) -> None:
    """Copy an installed run's evaluation (on the evaluation phantom) beside its shipped model."""
    for filename in EVALUATION:
        shutil.copy2(run / filename, folder / run.name / filename)


def install_evaluation(run: Path, data: Path, fingerprint: str, folder: Path = ZOO_DIR) -> bool:
    """Install the zoo's evaluation of `run` if it was made on these very films; True if so.

    `fingerprint` is that of the phantom at `data`; the evaluation's metrics.json records the one
    it was made on. A phantom's fingerprint says what drew it and its labels, not its PNG bytes
    (`core.data.chestxray14.phantom_fingerprint`), so it holds on machines other than the zoo's.
    The copy points at `data`, where the films now are.
    """
    source = folder / run.name
    if not all((source / filename).is_file() for filename in EVALUATION):
        return False
    try:
        metrics = json.loads((source / EVALUATION[0]).read_text())
    except (OSError, ValueError):
        return False
    if metrics.get("data", {}).get("fingerprint") != fingerprint:
        return False
    from cxr_attention.core.runs import write_json

    for filename in EVALUATION[1:]:
        shutil.copy2(source / filename, run / filename)
    metrics["data"]["root"] = str(Path(data).resolve())
    write_json(run / EVALUATION[0], metrics)
    return True


def zoo_figures(run: Path, metrics: dict[str, Any], localization: dict, control: dict) -> dict:
    """What ZOO.json says of one shipped model."""
    return {
        "test_macro_auc": round(metrics["macro_auc"], 4),
        "test_micro_auc": round(metrics["micro_auc"], 4),
        "localization_method": localization["method"],
        "map_stage": localization["map_stage"],
        "pointing_game": round(localization["overall"]["pointing_game"], 4),
        "random_pointing_game": round(control["overall"]["pointing_game"], 4),
        "size_bytes": (run / "checkpoint.pt").stat().st_size,
    }


def describe_machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, CPU"


def write_zoo(folder: Path, recipe: ZooRecipe, fit_options: dict, runs: dict[str, dict]) -> Path:
    record = {
        "note": "phantom-trained demo models: synthetic training data, not for patients",
        "command": COMMAND,
        "recipe": recipe.as_json(),
        "fit_options": fit_options,
        "machine": describe_machine(),
        "created": time.strftime("%Y-%m-%d"),
        "runs": runs,
    }
    path = folder / ZOO_FILE
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
