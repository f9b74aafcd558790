"""The lung model's card: what it learnt, from whom, under which terms, and how well it does.

`make_lung_model` is the whole of `cxr-attention fit-lungs`: read the outlined films, split them
(stratified by centre, or one centre held out), train, measure on the films it did not learn, and
write OUT/lungs.pt (8-bit weights with this card inside), OUT/LUNGS.json (the same card, readable)
and OUT/history.csv.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import platform
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxr_attention import core
from cxr_attention.core.lungs.evaluate import evaluate_segmenter
from cxr_attention.core.lungs.fit import LungFitConfig, fit_segmenter, payload_of, read_pairs
from cxr_attention.core.lungs.model import load_lung_model, save_lung_model
from cxr_attention.core.lungs.pairs import outlined_films, split_outlined

CHECKPOINT = "lungs.pt"
PHANTOM_SEED = 4242  # the lung model's phantom films: a seed no classifier's phantom uses
CARD = "LUNGS.json"
HISTORY = "history.csv"

PURPOSE = (
    "a tool for judging attention maps (where is the lung?), not a diagnostic output: it outlines "
    "both lung fields of a frontal chest film, dense lung included"
)
# What is known of the masks' terms (../shared/realdata-lungs/README.md); the card repeats it.
MASK_TERMS = {
    "phantom": "phantom lung fields: drawn by the project's own generator (synthetic, no terms)",
    "MCUCXR": "Montgomery County masks: made by the U.S. National Library of Medicine with the "
    "films (Jaeger et al., Quant Imaging Med Surg 2014), released for research and teaching",
    "CHNCXR": "Shenzhen masks: drawn by Stirenko et al. (2018) and shared on Kaggle; re-hosts "
    "state CC BY-NC-SA 4.0 in one place and CC BY 4.0 (Mendeley Data v2) in another: a model "
    "trained on them is taken to carry CC BY-NC-SA 4.0 (non-commercial, share alike)",
}


def make_lung_model(
    data: str | Path,
    out: str | Path,
    config: LungFitConfig,
    test_group: str | None = None,
    command: str = "",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    phantom: int = 0,
    familiar: Sequence[str | Path] = (),
    describe_only: bool = False,
) -> dict[str, Any]:
    """Train, measure and write a lung model into `out`; returns its card. `phantom` films of the
    project's phantom (with their lung fields) join the outlined films as one more group, so the
    model also outlines the phantom's films (the demo's samples). `familiar`: folders of films
    without masks that the model's description of familiar films also covers
    (`core.lungs.familiar`). `describe_only` keeps the trained network in `out` and fits that
    description again (and the test figures that depend on it)."""
    with tempfile.TemporaryDirectory(prefix="lung-phantom-") as drawn:
        films = outlined_films(data)
        if phantom:
            films += phantom_films(Path(drawn), phantom, config.seed)
        if not describe_only:
            _make(data, films, Path(out), config, test_group, command, on_epoch, phantom)
        return describe_familiar(out, films, familiar, config.seed, test_group, command)


def describe_familiar(
    out: str | Path,
    films: Sequence,
    familiar: Sequence[str | Path],
    seed: int = 0,
    test_group: str | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Fit the lung model in `out` its description of familiar films: the outlined films' training
    and validation parts, and the films of `familiar` (a seeded 90 / 10 split), then measure which
    of the outlined test films it would warn of or refuse. Rewrites lungs.pt and LUNGS.json."""
    from cxr_attention.core.data.preprocess import model_view
    from cxr_attention.core.data.radiograph import iter_radiograph_files, load_radiograph
    from cxr_attention.core.lungs.familiar import fit_familiarity

    out = Path(out)
    model = load_lung_model(out / CHECKPOINT)
    parts = split_outlined(films, seed=seed, test_group=test_group)
    size = model.image_size
    train = [model_view(load_radiograph(f.film), size) for f in parts["train"]]
    val = [model_view(load_radiograph(f.film), size) for f in parts["val"]]
    rng = np.random.default_rng(seed)
    counts = {}
    for folder in familiar:
        paths = list(iter_radiograph_files([folder]))
        order = rng.permutation(len(paths))
        cut = max(1, len(paths) // 10)
        val += [model_view(load_radiograph(paths[i]), size) for i in order[:cut]]
        train += [model_view(load_radiograph(paths[i]), size) for i in order[cut:]]
        counts[Path(folder).name] = len(paths)
    model.familiarity = fit_familiarity(model, np.stack(train), np.stack(val))
    card = dict(model.card)
    card["familiar"] = {
        "method": "Mahalanobis distances of pooled features per layer (core.lungs.familiar)",
        "films": {"outlined train and validation": len(parts["train"]) + len(parts["val"])}
        | {f"{name} (no masks)": n for name, n in counts.items()},
        "warn_above": model.familiarity.warn,
        "refuse_above": model.familiarity.refuse,
        "command": command,
    }
    save_lung_model(out / CHECKPOINT, payload_of(model, card), compact=True)
    shipped = load_lung_model(out / CHECKPOINT)
    card["test"] = evaluate_segmenter(parts["test"], shipped, seed=seed)
    card["size_mb"] = round((out / CHECKPOINT).stat().st_size / 2**20, 2)
    save_lung_model(out / CHECKPOINT, payload_of(shipped, card), compact=True)
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card


def phantom_films(folder: Path, n: int, seed: int) -> list:
    """`n` phantom films at 256 px (the teaching phantom, seed PHANTOM_SEED + seed) with their
    lung fields, as the group "phantom"."""
    from cxr_attention.core.data.phantom import generate_phantom

    generate_phantom(folder, n, size=256, seed=PHANTOM_SEED + seed, workers=1)
    return outlined_films(folder, group="phantom")


def _make(data, films, out: Path, config, test_group, command, on_epoch, phantom) -> dict[str, Any]:
    parts = split_outlined(films, seed=config.seed, test_group=test_group)
    size = config.model.image_size
    model, history = fit_segmenter(
        read_pairs(parts["train"], size), read_pairs(parts["val"], size), config, on_epoch
    )
    out.mkdir(parents=True, exist_ok=True)
    path = save_lung_model(out / CHECKPOINT, payload_of(model), compact=True)
    shipped = load_lung_model(path)  # the figures are the 8-bit copy's, as shipped
    groups = sorted({f.group for f in parts["train"]})
    card = {
        "purpose": PURPOSE,
        "command": command,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "package_version": core.__version__,
        "data": {
            "name": Path(data).name,
            "phantom_films": phantom,
            "films": {part: _count(items) for part, items in parts.items()},
            "split": f"centre {test_group} held out as the test set"
            if test_group
            else f"seeded (seed {config.seed}), stratified by centre: 70 % train, 10 % "
            "validation, 20 % test",
            "mask_terms": [MASK_TERMS.get(g, f"{g}: terms unknown") for g in groups],
        },
        "fit": config.as_json(),
        "best_epoch": model.training["best_epoch"],
        "train_seconds": model.training["seconds"],
        "validation_dice_in_view": model.training["val_dice"],
    }
    save_lung_model(path, payload_of(shipped, card), compact=True)  # 8-bit again: the same bytes
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
    with (out / HISTORY).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    return card


def _count(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.group] = counts.get(item.group, 0) + 1
    return counts
