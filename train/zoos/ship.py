"""Ship trained runs into a zoo folder as 8-bit copies that know what they learnt.

Each model of the zoo ZOO gets:

    ZOO/<model>/checkpoint.pt   8-bit weights (`core.models.compact`), OOD description, temperatures
    ZOO/<model>/config.json, history.csv, timeline/
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from cxr_attention.train.zoos.record import ZOO_FILE

SHIPPED = ("checkpoint.pt", "config.json", "history.csv")  # and the timeline/ folder


def copy_run(source: Path, target: Path) -> None:
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
    from cxr_attention.train.zoos.trust import refit_shipped

    target = folder / run.name
    copy_run(run, target)
    checkpoint = target / SHIPPED[0]
    torch.save(compact_checkpoint(read_checkpoint_data(checkpoint)), checkpoint)
    refit_shipped(target)
    return target


def ship_runs(runs: list[Path], zoo: Path, real_films: bool = False) -> list[Path]:
    """8-bit copies of `runs` in `zoo` (replacing those of the same name; the zoo's other models
    stay). ZOO.json goes: it is written again after the evaluation. `real_films`: the timelines
    keep which films, never the films (no film of a real collection is copied anywhere)."""
    from cxr_attention.core.training.timeline import strip_views

    for run in runs:
        shutil.rmtree(zoo / run.name, ignore_errors=True)
    zoo.mkdir(parents=True, exist_ok=True)
    shipped = [ship_run(run, zoo) for run in runs]
    if real_films:
        for folder in shipped:
            strip_views(folder)
    (zoo / ZOO_FILE).unlink(missing_ok=True)
    return shipped


def name_model(shipped: Path, title: str, note: str = "") -> None:
    """Record in a shipped model's checkpoint what it learnt, in words, where its training data
    has no title yet (the reader gives one since the Kermany names are recognised; older runs
    lack it), and how it differs from its grid cell (`note`, an extra model's)."""
    from cxr_attention.core.models.checkpoint import read_checkpoint_data

    checkpoint = shipped / SHIPPED[0]
    data = read_checkpoint_data(checkpoint)
    training = data.setdefault("training", {})
    recorded = training.setdefault("data", {})
    changed = False
    if not recorded.get("title"):
        recorded["title"] = title
        changed = True
    if note and training.get("note") != note:
        training["note"] = note
        changed = True
    if changed:
        torch.save(data, checkpoint)
