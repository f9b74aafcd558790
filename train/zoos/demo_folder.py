"""The demo folder: the phantom zoo evaluated on films drawn here, every other zoo beside it.

What `cxr-attention demo` builds in DIR:

    DIR/phantom/          the evaluation phantom's test films (ChestX-ray14 layout + masks/)
    DIR/runs/<model>/     the phantom zoo's models (checkpoint, timeline, metrics, localization)
    DIR/runs/<zoo runs>/  every films zoo of the registry, with its shipped evaluation
    DIR/report/           report.md, report.html
    DIR/DEMO.json         what was built; its presence makes a second call go straight to the app
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cxr_attention.train.commands.sweep import Steps, set_threads
from cxr_attention.train.zoos.recipe import PhantomRecipe
from cxr_attention.train.zoos.recipes import PHANTOM
from cxr_attention.train.zoos.registry import PHANTOM_ZOO, films_zoos

MARKER = "DEMO.json"
DEMO_VERSION = 2  # bump when the demo's steps change: older demo folders are rebuilt


@dataclass(frozen=True)
class DemoSettings:
    """What the demo builds; DEMO.json records it so that a changed zoo or recipe rebuilds."""

    recipe: PhantomRecipe = PHANTOM
    zoo: str = str(PHANTOM_ZOO.folder)  # the phantom zoo evaluated here
    zoo_created: str = ""  # ZOO.json's date: a rebuilt zoo is evaluated again
    beside: dict[str, str] = field(default_factory=dict)  # films zoos shipped: {name: created}
    retrain: bool = False
    fit_overrides: dict[str, Any] = field(default_factory=dict)  # on top of the preset (tests)
    only: tuple[str, ...] = ()  # --retrain these models alone, keeping the zoo's others
    n_resamples: int = 200  # bootstrap resamples for the CIs
    version: int = DEMO_VERSION

    def as_json(self) -> dict[str, Any]:
        data = asdict(self) | {"recipe": self.recipe.as_json()}
        # what the evaluation depends on; how the zoo was trained is ZOO.json's business
        for key in ("retrain", "fit_overrides", "only"):
            data.pop(key)
        return data


def shipped_beside() -> dict[str, str]:
    """{name: ZOO.json's date} of every films zoo shipped (a rebuilt one is installed again)."""
    from cxr_attention.train.zoos.record import read_zoo

    records = {zoo.name: read_zoo(zoo.folder) for zoo in films_zoos()}
    return {name: str(record.get("created", "")) for name, record in records.items() if record}


def default_dir() -> Path:
    """~/.cache/cxr-attention/demo when writable, else ./demo."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cxr-attention"
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.touch()
        probe.unlink()
        return home / "demo"
    except OSError:
        return Path.cwd() / "demo"


def is_built(folder: Path, settings: DemoSettings) -> bool:
    """DEMO.json records these settings and every run it lists is still evaluated."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("settings") != settings.as_json():
        return False
    runs = [folder / "runs" / name for name in recorded.get("runs", [])]
    return bool(runs) and all((run / "metrics.json").is_file() for run in runs)


def build_demo(
    folder: Path, settings: DemoSettings, progress: bool, fresh: bool = False
) -> list[Path]:
    """Evaluation phantom, the installed zoo, its evaluation, localization, report, then the
    films zoos beside it. Returns the phantom zoo's runs.

    The zoo's shipped evaluation is installed when it was made on these very films, unless `fresh`.
    """
    from cxr_attention.core.data.sources import open_dataset
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.models.kinds import parse_variant
    from cxr_attention.core.report import compare_runs
    from cxr_attention.train.zoos.evaluate import localize, study
    from cxr_attention.train.zoos.install import install_evaluation, install_zoo
    from cxr_attention.train.zoos.phantoms import draw_evaluation_phantom, evaluation_phantom_title
    from cxr_attention.train.zoos.record import read_zoo

    recipe, zoo_folder = settings.recipe, Path(settings.zoo)
    zoo = read_zoo(zoo_folder) or {"runs": {name: {} for name in recipe.model_names()}}
    names = list(zoo["runs"])
    kinds = {model.name: model.kind for model in recipe.models()}
    beside = films_zoos()
    phantom = folder / "phantom"
    titles = [
        evaluation_phantom_title(recipe),
        f"install the demo zoo from {settings.zoo}: {len(names)} models",
        *[f"evaluate {name}" for name in names],
        *[f"localize the maps of {name}" for name in names],
        *[f"attention study of {name}" for name in names],
        "compare -> report",
        *[
            f"install the real-film zoo from {z.folder if z.name in settings.beside else '(none shipped)'}"
            for z in beside
        ],
    ]
    steps = Steps(titles)
    steps.show_plan(f"cxr-attention demo: building in {folder} ({set_threads()} threads)")
    (folder / MARKER).unlink(missing_ok=True)
    with steps.step(0) as outcome:
        draw_evaluation_phantom(phantom, recipe, progress, outcome)
    with steps.step(1):
        runs = install_zoo(folder / "runs", names, zoo_folder)
        fingerprint = open_dataset(phantom).fingerprint
    shipped = {
        run: not fresh and install_evaluation(run, phantom, fingerprint, zoo_folder) for run in runs
    }
    n = len(runs)
    for i, run in enumerate(runs):
        with steps.step(2 + i) as outcome:
            if shipped[run]:
                outcome["note"] = "shipped evaluation of these very films installed"
            else:
                evaluate_run(
                    run, data=phantom, n_resamples=settings.n_resamples, progress=progress,
                    num_workers=0,
                )  # fmt: skip
    for i, run in enumerate(runs):
        with steps.step(2 + n + i) as outcome:
            kind = kinds.get(run.name, parse_variant(run.name)[1])
            outcome["note"] = "shipped with the evaluation"
            if not shipped[run]:
                outcome["note"] = localize(run, phantom, recipe.localize_limit, kind)
    for i, run in enumerate(runs):
        with steps.step(2 + 2 * n + i) as outcome:
            outcome["note"] = "shipped with the evaluation"
            if not shipped[run]:
                outcome["note"] = study(run, phantom, recipe.localize_limit)
    with steps.step(2 + 3 * n):
        paths = compare_runs(runs, folder / "report", n_resamples=settings.n_resamples)
    for i, films_zoo in enumerate(beside):
        with steps.step(3 + 3 * n + i) as outcome:
            installed = install_beside(folder / "runs", films_zoo.runs, films_zoo.folder)
            where = folder / "runs" / films_zoo.runs
            outcome["note"] = f"{len(installed)} models in {where}" if installed else "none"
    record = {"settings": settings.as_json(), "runs": [r.name for r in runs]}
    record["report"] = str(paths.html)
    (folder / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    return runs


def install_beside(runs: Path, sub: str, zoo: Path) -> list[Path]:
    """A films zoo's models beside the phantom zoo's (`runs`/`sub`/<model>), replacing what was
    there; [] when none is shipped."""
    from cxr_attention.train.zoos.install import install_films_zoo

    target = runs / sub
    shutil.rmtree(target, ignore_errors=True)
    return install_films_zoo(target, zoo)


def rewrite_marker(folder: Path, settings: DemoSettings) -> None:
    """DEMO.json with the new zoo's date, so that the next call goes straight to the app."""
    marker = folder / MARKER
    record = json.loads(marker.read_text())
    record["settings"] = settings.as_json()
    marker.write_text(json.dumps(record, indent=2) + "\n")
