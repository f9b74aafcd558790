"""Install a zoo's models, and its shipped evaluation, into a runs folder the app reads.

    ZOO/<model>/metrics.json, predictions.csv, ...   the evaluation shipped beside each model

A phantom zoo's evaluation is installed only when it was made on the very films the demo drew here
(`install_evaluation`: the phantom's fingerprint); a films zoo's always (`install_films_zoo`): the
films stay where they are, and pages that need them say how to point the app at the collection.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cxr_attention.core.errors import RunError
from cxr_attention.train.zoos.ship import SHIPPED, copy_run

PHANTOM_EVALUATION = (
    "metrics.json",
    "predictions.csv",
    "localization.json",
    "localization_random.json",
    "study.json",  # the attention study (core.study): every map's figures, faithfulness, cost
)
FILMS_EVALUATION = (
    "metrics.json",
    "predictions.csv",
    "blanking.json",
    "trust.json",
    "study.json",  # every map's in-lung figures and blanking (core.study, lung fields)
    "localization_lungs.json",  # the model's own map held to the lung fields
)


def require_shipped(names: list[str], folder: Path) -> None:
    """`RunError` naming the first of `names` whose checkpoint the zoo lacks."""
    from cxr_attention.train.zoos.registry import PHANTOM_ZOO, shipped_at

    for name in names:
        if not (folder / name / SHIPPED[0]).is_file():
            command = (shipped_at(folder) or PHANTOM_ZOO).command
            raise RunError(f"the demo zoo in {folder} lacks {name}: rebuild it with `{command}`")


def install_zoo(runs: Path, names: list[str], folder: Path) -> list[Path]:
    """Copy the zoo's models `names` into `runs`/<name> (replacing what is there); their folders."""
    require_shipped(names, folder)
    installed = []
    for name in names:
        copy_run(folder / name, runs / name)
        installed.append(runs / name)
    return installed


def ship_evaluation(run: Path, folder: Path, files: tuple[str, ...]) -> None:
    """Copy an installed model's evaluation `files` beside its shipped model in the zoo."""
    for filename in files:
        shutil.copy2(run / filename, folder / run.name / filename)


def install_evaluation(run: Path, data: Path, fingerprint: str, folder: Path) -> bool:
    """Install the phantom zoo's evaluation of `run` if it was made on these very films; True if
    so.

    `fingerprint` is that of the phantom at `data`; the evaluation's metrics.json records the one
    it was made on. A phantom's fingerprint says what drew it and its labels, not its PNG bytes
    (`core.data.chestxray14.phantom_fingerprint`), so it holds on machines other than the zoo's.
    The copy points at `data`, where the films now are.
    """
    from cxr_attention.core.runs import write_json

    source = folder / run.name
    if not all((source / filename).is_file() for filename in PHANTOM_EVALUATION):
        return False
    try:
        metrics = json.loads((source / PHANTOM_EVALUATION[0]).read_text())
    except (OSError, ValueError):
        return False
    if metrics.get("data", {}).get("fingerprint") != fingerprint:
        return False
    for filename in PHANTOM_EVALUATION[1:]:
        shutil.copy2(source / filename, run / filename)
    metrics["data"]["root"] = str(Path(data).resolve())
    write_json(run / PHANTOM_EVALUATION[0], metrics)
    return True


def install_films_zoo(runs: Path, zoo: Path) -> list[Path]:
    """Copy a films zoo's models with their shipped evaluation into `runs`/<name>; [] when no
    zoo is shipped there."""
    from cxr_attention.train.zoos.record import read_zoo

    record = read_zoo(zoo)
    if record is None:
        return []
    installed = install_zoo(runs, list(record["figures"]), zoo)
    for run in installed:
        for filename in FILMS_EVALUATION:
            if (zoo / run.name / filename).is_file():
                shutil.copy2(zoo / run.name / filename, run / filename)
    return installed
