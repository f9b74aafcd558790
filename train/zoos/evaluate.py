"""Evaluate a zoo's models where the demo installed them.

A phantom model is scored on the evaluation phantom, its maps against the lesion masks
(`localize`) and in the attention study (`study`); `train.zoos.demo_folder` runs these as steps of
the demo. A films model is scored on the patients held out at training, its maps blanked
(`core.study.open_blanking`) and its OOD warning probed with phantom films and images that are not
chest films (`evaluate_films_zoo`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cxr_attention.train.commands.sweep import Steps
from cxr_attention.train.zoos.install import FILMS_EVALUATION, install_zoo, require_shipped
from cxr_attention.train.zoos.recipe import FilmsRecipe


def localize(run: Path, data: Path, limit: int, kind: str | None) -> str:
    """Score the run's maps on the lesion masks: its own attention maps, or Grad-CAM for a
    baseline (`kind` None)."""
    from cxr_attention.core.explain.localize_run import localize_run

    method = "gradcam" if kind is None else "attention"
    report = localize_run(run, data=data, method=method, limit=limit)
    return f"{method}: pointing game {report['overall']['pointing_game']:.2f}"


def study(run: Path, data: Path, limit: int) -> str:
    """Every map of the run against the lesion masks, faithfulness and cost (RUN/study.json)."""
    from cxr_attention.core.study.run import run_study

    result = run_study(run, data=data, limit=limit)
    own = result.get("own_map") or next(iter(result["maps"]))
    pointing = result["maps"][own]["localization"]["overall"]["pointing_game"]
    return f"{own}: pointing game {pointing:.2f}"


def evaluate_films_zoo(
    data: Path, zoo: Path, work: Path, recipe: FilmsRecipe, progress: bool
) -> list[Path]:
    """Evaluate every shipped model on its held-out patients and blank its maps; ship that
    evaluation beside it. Returns the evaluated copies (under `work`/installed)."""
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.ood_probes import TRUST, flag_shares_of, probe_sets
    from cxr_attention.core.runs import write_json
    from cxr_attention.core.study.open_blanking import run_open_blanking
    from cxr_attention.core.training.timeline import strip_views
    from cxr_attention.train.zoos.ship import name_model

    models = recipe.models()
    names = [model.name for model in models]
    require_shipped(names, zoo)  # before any work, not after
    for model in models:
        name_model(zoo / model.name, recipe.title, model.note)
        strip_views(zoo / model.name)
    steps = Steps(
        [*[f"evaluate {n} on the held-out patients" for n in names],
         *[f"blank the maps of {n}" for n in names],
         *[f"study the maps of {n} against the lung fields" for n in names],
         "probe the OOD warning of every model with phantom and non-chest images"]
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
    for i, run in enumerate(runs):
        with steps.step(2 * len(runs) + i) as outcome:
            outcome["note"] = study_lungs(run, data, recipe.blanking_limit)
    probes = probe_sets(work / "probes", recipe.probe_films)
    with steps.step(3 * len(runs)) as outcome:
        # all models at once: each probe film is read, and its lung fields found, once
        shares = flag_shares_of({run.name: run / "checkpoint.pt" for run in runs}, probes)
        for run in runs:
            write_json(run / TRUST, shares[run.name])
        outcome["note"] = (
            "; ".join(
                f"{run.name} "
                + ", ".join(f"{v['flagged']}/{v['n']}" for v in shares[run.name].values())
                for run in runs
            )
            + " flagged"
        )
    for run in runs:
        for filename in FILMS_EVALUATION:
            shutil.copy2(run / filename, zoo / run.name / filename)
    return runs


def study_lungs(run: Path, data: Path, limit: int) -> str:
    """The study of every map (study.json: in-lung figures per map beside a random map's) and the
    model's own map against the lung fields (localization_lungs.json), on the first `limit`
    held-out films, the lung fields found by the shipped lung model."""
    from cxr_attention.core.explain.localize_run import own_map_method
    from cxr_attention.core.explain.lung_run import localize_lungs
    from cxr_attention.core.study.run import run_study

    run_study(run, data=data, limit=limit)
    method = own_map_method(run)
    report = localize_lungs(run, data=data, method=method, limit=limit)
    return (
        f"{method}: peak in the lungs {report['map']['peak_inside']:.2f} "
        f"(a random map {report['random']['peak_inside']:.2f})"
    )


def _blanking_note(result: dict[str, Any]) -> str:
    own = result.get("own_map") or next(iter(result["maps"]))
    faith = result["maps"][own]["faithfulness"]
    return f"{own}: drop {faith['mean_drop']:.3f} vs random {faith['random_mean_drop']:.3f}"
