"""The real-film zoo shipped in assets/zoo-pneumonia: small models that learnt real chest films.

`cxr-attention demo --retrain --data DIR --zoo assets/zoo-pneumonia` rebuilds it
(`retrain_real_zoo`): the collection at DIR read through `core.data.sources` (class folders,
patients from the file names, byte-identical copies dropped), MobileNetV2 trained from scratch as a
baseline, with the paper's spatial gate and with a class-specific head (train/presets/pneumonia.yaml),
each shipped as an 8-bit copy with its OOD description and temperatures fitted again on the copy
(`train.zoo.ship_run`), then each copy evaluated on the patients held out at training (a seeded
share of the patients: the collection's official test films are never read). ZOO.json records the
recipe, the command, the times, those figures, the attention effect (DeLong, paired on the same
films) and the blanking check of every map (`core.study.open_blanking`).

The films have no lesion outlines: no pointing game, IoBB or energy is measured or shown for them.

    assets/zoo-pneumonia/ZOO.json
    assets/zoo-pneumonia/<variant>/checkpoint.pt, config.json, history.csv, timeline/
    assets/zoo-pneumonia/<variant>/metrics.json, predictions.csv, blanking.json   its evaluation
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REAL_ZOO_DIR = Path(__file__).resolve().parents[1] / "assets" / "zoo-pneumonia"
COMMAND = "cxr-attention demo --retrain --data DIR --zoo assets/zoo-pneumonia"
EVALUATION = ("metrics.json", "predictions.csv", "blanking.json", "trust.json")


@dataclass(frozen=True)
class RealZooRecipe:
    """What the real-film zoo learns from and how; ZOO.json keeps it."""

    collection: str = "pneumonia"  # the zoo's short name (its runs folder in the demo)
    # what the models learnt, in the words every page uses
    title: str = "5,216 paediatric films from one centre in Guangzhou"
    preset: str = "pneumonia"  # train/presets/pneumonia.yaml
    backbones: tuple[str, ...] = ("mobilenetv2_100",)
    kinds: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"mobilenetv2_100": ("spatial", "class")}
    )
    # as the phantom zoo: the class-specific head reads stage 3 (8 x 8 at 128 px)
    variant_options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"mobilenetv2_100+class": {"head_stage": -2}}
    )
    blanking_limit: int = 300  # held-out films with pneumonia whose maps are blanked

    def variants(self) -> list:
        """The zoo's variants (train.commands.sweep.Variant), each backbone's baseline first."""
        from cxr_attention.train.commands.sweep import grid

        return [v for b in self.backbones for v in grid([b], self.kinds.get(b, ("spatial",)))]

    def options_for(self, variant: str) -> dict[str, Any]:
        return dict(self.variant_options.get(variant, {}))

    def as_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def fit_options(data: Path, recipe: RealZooRecipe, progress: bool) -> dict[str, Any]:
    from cxr_attention.train.commands.fit import load_preset

    # the cache makes loading nearly free: worker processes would only take cores from training
    return load_preset(recipe.preset) | {"data": str(data), "workers": 0, "progress": progress}


def train_real_zoo(
    data: Path, work: Path, recipe: RealZooRecipe, progress: bool, only: tuple[str, ...] = ()
) -> list[Path]:
    """Train every variant (or those named in `only`) on the films at `data`; their run folders
    under `work`/runs."""
    from cxr_attention.core.data.audit import check_films
    from cxr_attention.core.data.cache import build_cache
    from cxr_attention.core.data.sources import open_dataset
    from cxr_attention.core.training import FitConfig, fit
    from cxr_attention.train.commands.sweep import Steps, variant_options

    variants = [v for v in recipe.variants() if not only or v.name in only]
    options = fit_options(data, recipe, progress)
    size = int(options["image_size"])
    steps = Steps(
        [
            f"image cache at {size} px",
            *[f"train {v.name} ({options['epochs']} epochs)" for v in variants],
        ]
    )
    steps.show_plan(f"cxr-attention demo --retrain: training on {data} in {work}")
    with steps.step(0):
        config = FitConfig.from_dict(variant_options(options, variants[0], work / "runs"))
        build_cache(check_films(open_dataset(data, config.read_options())), size, progress=progress)
    runs = []
    for i, variant in enumerate(variants):
        with steps.step(1 + i):
            own = options | recipe.options_for(variant.name)
            runs.append(fit(FitConfig.from_dict(variant_options(own, variant, work / "runs"))).path)
    return runs


def ship_real_zoo(runs: list[Path], zoo: Path) -> None:
    """8-bit copies of `runs` in `zoo` (replacing those of the same name), trust refitted."""
    from cxr_attention.core.training.timeline import strip_views
    from cxr_attention.train.zoo import ship_run

    zoo.mkdir(parents=True, exist_ok=True)
    for run in runs:
        shutil.rmtree(zoo / run.name, ignore_errors=True)
        strip_views(ship_run(run, zoo))  # the timeline keeps which films, never the films
    (zoo / "ZOO.json").unlink(missing_ok=True)  # written after the evaluation


def evaluate_real_zoo(
    data: Path, zoo: Path, work: Path, recipe: RealZooRecipe, progress: bool
) -> list[Path]:
    """Evaluate every shipped model on its held-out patients and blank its maps; ship that
    evaluation beside it. Returns the evaluated copies (under `work`/installed)."""
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.ood_probes import TRUST, flag_shares, probe_sets
    from cxr_attention.core.runs import write_json
    from cxr_attention.core.study.open_blanking import run_open_blanking
    from cxr_attention.core.training.timeline import strip_views
    from cxr_attention.train.commands.sweep import Steps
    from cxr_attention.train.zoo import install_zoo

    names = [v.name for v in recipe.variants()]
    for name in names:
        name_collection(zoo / name, recipe.title)
        strip_views(zoo / name)
    steps = Steps(
        [*[f"evaluate {n} on the held-out patients" for n in names],
         *[f"blank the maps of {n}" for n in names],
        *[f"probe the OOD warning of {n} with phantom and non-chest images" for n in names]]
    )  # fmt: skip
    steps.show_plan(f"cxr-attention demo: evaluating the zoo in {zoo}")
    runs = install_zoo(work / "installed", names, zoo)
    for i, run in enumerate(runs):
        with steps.step(i):
            evaluate_run(run, data=data, progress=progress, num_workers=0)
    for i, run in enumerate(runs):
        with steps.step(len(runs) + i) as outcome:
            result = run_open_blanking(run, data=data, limit=recipe.blanking_limit)
            outcome["note"] = _blanking_note(result)
    probes = probe_sets(work / "probes")
    for i, run in enumerate(runs):
        with steps.step(2 * len(runs) + i) as outcome:
            shares = flag_shares(run / "checkpoint.pt", probes)
            write_json(run / TRUST, shares)
            outcome["note"] = ", ".join(
                f"{k}: {v['flagged']}/{v['n']} flagged" for k, v in shares.items()
            )
    for run in runs:
        for filename in EVALUATION:
            shutil.copy2(run / filename, zoo / run.name / filename)
    return runs


def name_collection(shipped: Path, title: str) -> None:
    """Record what the shipped model learnt, in words, where its training data has no title yet
    (the reader gives one since the Kermany names are recognised; older runs lack it)."""
    import torch

    from cxr_attention.core.models.checkpoint import read_checkpoint_data

    checkpoint = shipped / "checkpoint.pt"
    data = read_checkpoint_data(checkpoint)
    recorded = data.setdefault("training", {}).setdefault("data", {})
    if not recorded.get("title"):
        recorded["title"] = title
        torch.save(data, checkpoint)


def install_real_zoo(runs: Path, zoo: Path = REAL_ZOO_DIR) -> list[Path]:
    """Copy the real-film zoo's models with their shipped evaluation into `runs`/<name>; [] when
    no real-film zoo is shipped there. The films stay where they are: pages that need them say
    how to point the app at the collection."""
    from cxr_attention.train.zoo import install_zoo, read_zoo

    record = read_zoo(zoo)
    if record is None:
        return []
    installed = install_zoo(runs, list(record["figures"]), zoo)
    for run in installed:
        for filename in EVALUATION:
            if (zoo / run.name / filename).is_file():
                shutil.copy2(zoo / run.name / filename, run / filename)
    return installed


def _blanking_note(result: dict[str, Any]) -> str:
    own = result.get("own_map") or next(iter(result["maps"]))
    faith = result["maps"][own]["faithfulness"]
    return f"{own}: drop {faith['mean_drop']:.3f} vs random {faith['random_mean_drop']:.3f}"


def record_real_zoo(zoo: Path, recipe: RealZooRecipe, runs: list[Path], data: Path) -> None:
    """ZOO.json: recipe, command, time, held-out figures, attention effect and blanking."""
    import pandas as pd

    from cxr_attention import core
    from cxr_attention.core.runs import write_json

    figures: dict[str, Any] = {}
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        blanking = json.loads((run / "blanking.json").read_text())
        history = zoo / run.name / "history.csv"
        seconds = float(pd.read_csv(history)["seconds"].sum()) if history.is_file() else 0.0
        own = blanking.get("own_map") or next(iter(blanking["maps"]))
        figures[run.name] = {
            "test_auc": _auc_of(metrics),
            "test_auc_ci": metrics["per_class"][metrics["labels"][0]].get("auc_ci"),
            "n_test_images": metrics["n_images"],
            "n_test_patients": metrics["n_patients"],
            "blanking": {"map": own, **_plain(blanking["maps"][own]["faithfulness"])},
            "flagged": {
                "held-out films": (metrics.get("out_of_distribution") or {}).get("flagged_share"),
                **{k: v["share"] for k, v in json.loads((run / "trust.json").read_text()).items()},
            },
            "train_seconds": round(seconds),
            "size_mb": round((zoo / run.name / "checkpoint.pt").stat().st_size / 2**20, 2),
        }
    options = fit_options(Path("<data>"), recipe, False)
    options = {k: v for k, v in options.items() if k not in ("data", "progress", "workers")}
    write_json(
        zoo / "ZOO.json",
        {
            "command": COMMAND,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
            "package_version": core.__version__,
            "recipe": recipe.as_json(),
            "fit_options": options,
            "data": {"name": Path(data).name, "title": recipe.title},
            "held_out": "a seeded 20 % of the patients (seed 0); the official test films unused",
            "lesion_outlines": "none: no pointing game, IoBB or energy is measured on these films",
            "figures": figures,
            "attention_effect": attention_effect(runs),
        },
    )


def attention_effect(runs: list[Path]) -> dict[str, Any]:
    """Each attention model's AUC against its backbone's baseline on the same held-out films
    (DeLong's test, paired): {variant: {label: auc_a (attention), auc_b (baseline), difference,
    ci_low, ci_high, p_value}}."""
    import pandas as pd

    from cxr_attention.core.metrics.compare import compare_runs_delong
    from cxr_attention.core.models.kinds import parse_variant

    by_name = {run.name: run for run in runs}
    out = {}
    for run in runs:
        backbone, kind = parse_variant(run.name)
        if kind is None or backbone not in by_name:
            continue
        labels = json.loads((run / "metrics.json").read_text())["labels"]
        table = compare_runs_delong(
            pd.read_csv(run / "predictions.csv"),
            pd.read_csv(by_name[backbone] / "predictions.csv"),
            labels,
        )
        out[run.name] = {"against": backbone, **_plain(table.to_dict(orient="index"))}
    return out


def _auc_of(metrics: dict[str, Any]) -> float | None:
    label = metrics["labels"][0]
    return metrics["per_class"][label]["auc"]


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=float))
