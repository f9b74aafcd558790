"""Every map of a run held to the films' lung fields: the in-lung figures of `study` and `localize`.

For each film of a split labelled with a finding, each of its findings' maps (the model's own
maps, Grad-CAM, or any `explain` method) is scored against the film's lung field
(`core.explain.lung_scores`), and a random map of the same smoothness on the same films beside it.
Where the collection brings its own lung masks they are the truth, else the lung model's fields
(`core.lungs.truth`); films whose field the lung model refuses are left out and counted.

The section each map gets (in study.json under maps.<key>.lungs, in localization_lungs.json):

    {"map": {n, peak_inside, mass_inside, flagged, places {place: count}},
     "random": the same for the random control,
     "peak_vs_random": {map_only, random_only, p (exact McNemar, two-sided)},
     "per_class": {label: the same three keys}}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import binomtest

from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.errors import ConfigError, DatasetError
from cxr_attention.core.explain.localize_run import (
    TruthCase,
    control_sigma,
    labelled_cases,
    usable_cases,
)
from cxr_attention.core.explain.lung_scores import (
    LungScore,
    film_area,
    score_in_lungs,
    summarize_lung_scores,
)
from cxr_attention.core.explain.methods import explain
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.shipped import shipped_lung_model
from cxr_attention.core.lungs.truth import FilmLungs, film_lungs, lungs_source
from cxr_attention.core.lungs.views import film_input, lung_model_for
from cxr_attention.core.runs import write_json

LOCALIZATION_LUNGS = "localization_lungs.json"


@dataclass(frozen=True)
class ScoredFinding:
    """One finding's map on one film, and the random control's, held to the film's lungs."""

    image_id: str
    label: str
    map: LungScore
    random: LungScore


@dataclass(frozen=True)
class LungCases:
    """The films scored against their lung fields, and those left out."""

    cases: list[TruthCase]
    lungs: dict[str, FilmLungs]  # image id -> its field
    source: str  # where the fields came from, in words
    left_out: dict[str, str]  # image id -> why it has no field

    def describe(self) -> dict[str, Any]:
        first = dict(list(self.left_out.items())[:5])
        return {
            "source": self.source,
            "n_films": len(self.cases),
            "n_left_out": len(self.left_out),
            "left_out": first,
        }


def lung_cases(
    cases: Sequence[TruthCase],
    lung_model: LungModel | None,
    own: bool = True,
    masks: Path | None = None,
) -> LungCases:
    """The cases with a plausible lung field (their own mask, or the lung model's), or with a
    region of their name in `masks`."""
    kept, fields, left_out = [], {}, {}
    loaded: list[LungModel] = []

    def segmenter() -> LungModel:  # the shipped model, loaded when a film has no mask of its own
        if not loaded:
            loaded.append(lung_model or shipped_lung_model())
        return loaded[0]

    for case in cases:
        found = film_lungs(case.path, segmenter, own=own, masks=masks)
        if found.view is None:
            left_out[case.image_id] = str(found.reason)
            continue
        kept.append(case)
        fields[case.image_id] = found
    used = loaded[0] if loaded else lung_model
    return LungCases(kept, fields, lungs_source(fields.values(), used), left_out)


def score_lung_cases(
    model,
    found: LungCases,
    method: str,
    stage: str | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
    prior_lungs: LungModel | None = None,
) -> list[ScoredFinding]:
    """The method's map and the random control scored, one per (film, finding). A model with a
    lung prior is shown its view (`prior_lungs` finds the fields it reads) and the truth field is
    carried into that view."""
    size = model.config.image_size
    generator = torch.Generator().manual_seed(int(seed))
    scored: list[ScoredFinding] = []
    options = {"stage": stage} if stage is not None else {}
    cases = found.cases
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        films = [film_input(case.path, model.config, prior_lungs) for case in chunk]
        x = config_input(np.stack([film.view for film in films]), model.config, device)
        wanted = sorted({label for case in chunk for label in case.labels})
        maps = explain(model, x, wanted, method, **options)
        sigma = control_sigma(model, maps.stage)
        randoms = explain(model, x, wanted, "random", generator=generator, sigma=sigma)
        for b, (case, film) in enumerate(zip(chunk, films, strict=True)):
            lungs = film.truth(found.lungs[case.image_id].in_view(size))
            area = film.truth(film_area(*film.shape, size))
            for label in case.labels:
                scored.append(
                    ScoredFinding(
                        case.image_id,
                        label,
                        score_in_lungs(
                            maps.map(label, image=b), lungs, area, maps.ranked(label, image=b)
                        ),
                        score_in_lungs(randoms.map(label, image=b), lungs, area),
                    )
                )
    return scored


def lung_section(scored: Sequence[ScoredFinding]) -> dict[str, Any]:
    """The in-lung figures of one map beside its random control (see the module docstring), and
    the same per label."""
    labels = sorted({s.label for s in scored})
    return _figures(scored) | {
        "per_class": {label: _figures([s for s in scored if s.label == label]) for label in labels}
    }


def _figures(scored: Sequence[ScoredFinding]) -> dict[str, Any]:
    ours = [s.map for s in scored]
    control = [s.random for s in scored]
    map_only = sum(a.inside and not b.inside for a, b in zip(ours, control, strict=True))
    random_only = sum(b.inside and not a.inside for a, b in zip(ours, control, strict=True))
    decided = map_only + random_only
    return {
        "map": summarize_lung_scores(ours),
        "random": summarize_lung_scores(control),
        "peak_vs_random": {
            "map_only": map_only,
            "random_only": random_only,
            "p": float(binomtest(map_only, decided, 0.5).pvalue) if decided else 1.0,
        },
    }


def localize_lungs(
    run: str | Path,
    data: str | Path | None = None,
    method: str = "gradcam",
    split: str = "test",
    limit: int | None = None,
    stage: str | None = None,
    lung_model: LungModel | None = None,
    own_lungs: bool = True,
    batch_size: int = 16,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """`localize --truth lungs`: one method's maps on a split's labelled films held to their lung
    fields; writes RUN/localization_lungs.json and returns it.

    {"run", "method", "maps" (in words), "map_stage", "split", "truth": "lungs", "lungs" (where
    the fields came from, films left out), "n_images", "map", "random", "peak_vs_random",
    "per_class"}
    """
    from cxr_attention.core.explain.localize_run import describe_maps, open_run_for_maps

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    opened = open_run_for_maps(run, data, device)
    model = opened.checkpoint.model
    if method == "attention" and not model.has_attention:
        raise ConfigError(
            f"{opened.folder.name} is a baseline model without attention maps: use --method gradcam"
        )
    labels = list(opened.checkpoint.labels)
    cases = labelled_cases(opened.index.split(split), labels)
    if not cases:
        raise DatasetError(f"no {split} film of {opened.index.root} carries one of {labels}")
    cases = cases[:limit] if limit is not None else cases
    found = lung_cases(cases, lung_model, own_lungs)
    prior_lungs = lung_model_for([model.config], lung_model)
    kept, _ = usable_cases(found.cases, model.config, prior_lungs)
    found = LungCases(kept, found.lungs, found.source, found.left_out)
    if not found.cases:
        raise DatasetError(
            f"none of the {len(cases)} {split} films has plausible lung fields "
            f"(first: {next(iter(found.left_out.values()))})"
        )
    scored = score_lung_cases(
        model, found, method, stage, batch_size, seed, opened.device, prior_lungs
    )
    explained_stage = stage or (model.stages[-1].name if method != "random" else "random")
    report = {
        "run": opened.folder.name,
        "method": method,
        "maps": describe_maps(model, method, explained_stage),
        "map_stage": explained_stage,
        "split": split,
        "truth": "lungs",
        "lungs": found.describe(),
        "n_images": len(found.cases),
        **lung_section(scored),
    }
    write_json(opened.folder.path / LOCALIZATION_LUNGS, report)
    return report


LOCALIZATION_FILMS = "localization_films.json"


def localize_films(
    run: str | Path,
    films: Sequence[str | Path],
    label: str | None = None,
    method: str = "gradcam",
    stage: str | None = None,
    masks: str | Path | None = None,
    lung_model: LungModel | None = None,
    own_lungs: bool = True,
    batch_size: int = 16,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """Any films, unlabelled, each held to its lung fields (or to its mask of the same name in
    `masks`: opacities a reader outlined, say) through the map of `label` (default: the model's
    first); writes RUN/localization_films.json and returns it.

    This is how a model is judged on a user's own outlined films: `cxr-attention localize RUN
    --films DIR [--masks OPACITIES]`.
    """
    from cxr_attention.core.data.radiograph import iter_radiograph_files
    from cxr_attention.core.evaluation import pick_device
    from cxr_attention.core.explain.localize_run import describe_maps
    from cxr_attention.core.labels import canonical_label
    from cxr_attention.core.models.checkpoint import load_checkpoint
    from cxr_attention.core.runs import RunFolder

    folder = RunFolder.open(run)
    device_t = pick_device(device)
    checkpoint = load_checkpoint(folder.checkpoint, device=device_t)
    model = checkpoint.model
    label = canonical_label(label) if label else checkpoint.labels[0]
    if label not in checkpoint.labels:
        raise ConfigError(f"{folder.name} has no label {label!r}: it has {checkpoint.labels}")
    if method == "attention" and not model.has_attention:
        raise ConfigError(f"{folder.name} is a baseline without attention maps: use gradcam")
    paths = list(iter_radiograph_files(films))
    if not paths:
        raise DatasetError(f"no PNG, JPEG or DICOM films in {', '.join(map(str, films))}")
    cases = [TruthCase(p.name, str(p), masks={label: None}) for p in paths]
    masks = Path(masks) if masks is not None else None
    if masks is not None and not masks.is_dir():
        raise DatasetError(f"--masks {masks} is not a folder of masks named as the films")
    found = lung_cases(cases, lung_model, own_lungs, masks)
    prior_lungs = lung_model_for([model.config], lung_model)
    kept, unreadable = usable_cases(found.cases, model.config, prior_lungs)
    if not kept:
        reasons = list(found.left_out.values()) + list(unreadable.values())
        raise DatasetError(f"no film could be scored (first: {reasons[0] if reasons else '?'})")
    found = LungCases(kept, found.lungs, found.source, found.left_out | unreadable)
    scored = score_lung_cases(model, found, method, stage, batch_size, seed, device_t, prior_lungs)
    explained_stage = stage or model.stages[-1].name
    report = {
        "run": folder.name,
        "method": method,
        "maps": describe_maps(model, method, explained_stage),
        "map_stage": explained_stage,
        "label": label,
        "films": [str(f) for f in films],
        "truth": f"masks in {masks}" if masks is not None else "lungs",
        "lungs": found.describe() | ({"source": f"the masks in {masks}"} if masks else {}),
        "n_images": len(found.cases),
        **lung_section(scored),
    }
    write_json(folder.path / LOCALIZATION_FILMS, report)
    return report
