"""`cxr-attention study RUN`: where each of a run's maps points, whether the model's score depends on
what the map shows, and what its attention costs; written to RUN/study.json.

The truth and the scoring are `localize`'s (`core.explain.localize_run`: the split's films that
carry ChestX-ray14 boxes or phantom lesion masks, pointing game, IoBB accuracy, energy in box, and
the random control on the same truth units). The maps studied are every map the model has of its
own (each gate of a spatial or cbam model; the per-label maps of a class-specific head) and
Grad-CAM of the final feature map, for baselines too. Faithfulness: `core.study.blanking`. Cost:
`core.study.cost`.

RUN/study.json (NaN written as null):

    run, backbone, kind      kind: null (baseline), "spatial", "cbam" or "class"
    mechanism                its title (core.models.kinds.KIND_TITLES, or "baseline (no attention)")
    class_specific, image_size, output_stride, attention_stages ([] without gates)
    data        {root, source, split, truth ("masks" | "boxes", or "none" for films without
                lesion outlines: then no localization is written and the blanking check blanks
                a fixed share of the view, region_share), n_images, n_truth (truth units)}
    own_map     the key in `maps` of the model's own map shown by default (the deepest gate, or
                "attention:class"); null for a baseline
    maps        {key: entry}, keys "attention:<gate stage>", "attention:class", "gradcam:<stage>":
        method ("attention" | "gradcam"), stage, own (true: the model's own attention map),
        map_size [h, w] (the map's own grid, before upsampling to the view)
        localization   the map's scores in localization.json's schema (n_boxes, per_class,
                       overall {n_boxes, pointing_game, iobb_acc {"0.1", "0.25", "0.5"},
                       energy_in_box}, method, map_stage, ...)
        random         the random control on the same truth units, smoothed to this map's cell
        pointing_vs_random  {map_only, random_only}: truth units where only the map (only the
                       control) points inside; p: exact McNemar test, two-sided (1 when they agree)
        faithfulness   {n (film, finding) pairs, mean_probability (before blanking), mean_drop
                       (probability lost when the map's region is black), random_mean_drop (a
                       region of the same size and shape at a random place), excess_drop
                       (mean_drop - random_mean_drop), ratio (mean_drop / random_mean_drop; null
                       unless the random region lowers the score), map_larger, random_larger
                       (pairs where that drop is larger by over 0.001), p (sign test on them),
                       region_share (mean share of the view blanked), per_class {label: the same
                       keys}}
    lungs       where the lung fields came from: {source, n_films, n_left_out, left_out {image
                id: why}}; each map's maps.<key>.lungs holds its in-lung figures beside a random
                map's (`core.study.lungs`); null when not asked for
    cost        {parameters, attention_parameters, baseline_parameters, latency_ms,
                 baseline_latency_ms, latency_overhead ((ours - baseline) / baseline), repeats,
                 threads, image_size}: CPU, batch 1, median
    seed, limit, map_threshold, created, package_version

Probabilities are the ones the run reports (sigmoid of the logit over the checkpoint's validation
temperature when it has one, as in predictions.csv).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import binomtest

from cxr_attention import core
from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.errors import ConfigError, DatasetError
from cxr_attention.core.explain.integrated_gradients import black_baseline
from cxr_attention.core.explain.localization import MAP_THRESHOLD, MapScore, box_mask
from cxr_attention.core.explain.localize_run import (
    TruthCase,
    labelled_cases,
    localization_report,
    open_run_for_maps,
    score_cases,
    truth_cases,
    truth_in_view,
    usable_cases,
)
from cxr_attention.core.explain.lung_run import lung_cases, lung_section, score_lung_cases
from cxr_attention.core.explain.methods import explain
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.views import film_input, lung_model_for
from cxr_attention.core.models.classifier import AttentionClassifier
from cxr_attention.core.models.kinds import KIND_TITLES
from cxr_attention.core.runs import write_json
from cxr_attention.core.study import STUDY
from cxr_attention.core.study.blanking import (
    REGION_SHARE,
    Drops,
    blanked_probabilities,
    fixed_regions,
    random_placement,
    summarize_drops,
    top_region,
)
from cxr_attention.core.study.cost import measure_cost

log = logging.getLogger(__name__)

BASELINE_TITLE = "baseline (no attention)"


@dataclass(frozen=True)
class StudyMap:
    """One kind of map the study scores for a model."""

    key: str  # "attention:stage4", "attention:class", "gradcam:stage4"
    method: str  # explain() method
    stage: str  # its stage= option
    own: bool  # the model's own attention, not a post-hoc explanation


def study_maps(model: AttentionClassifier) -> list[StudyMap]:
    """The model's own maps (each gate, or the class head), then Grad-CAM of the final stage."""
    own = [StudyMap(f"attention:{gate}", "attention", gate, True) for gate in model.gate_names]
    final = model.stages[-1].name
    return [*own, StudyMap(f"gradcam:{final}", "gradcam", final, False)]


def pointing_vs_random(
    ours: dict[str, list[MapScore]], control: dict[str, list[MapScore]]
) -> dict[str, Any]:
    """Discordant truth units of the map and its control, and the exact McNemar p (two-sided)."""
    map_only = random_only = 0
    for label, scores in ours.items():
        for a, b in zip(scores, control[label], strict=True):
            map_only += int(a.pointing and not b.pointing)
            random_only += int(b.pointing and not a.pointing)
    decided = map_only + random_only
    p = float(binomtest(map_only, decided, 0.5).pvalue) if decided else 1.0
    return {"map_only": map_only, "random_only": random_only, "p": p}


Regions = Callable[[TruthCase, tuple[float, int, int], int], dict[str, np.ndarray]]


def truth_regions(
    case: TruthCase, geometry: tuple[float, int, int], size: int
) -> dict[str, np.ndarray]:
    """{label: the case's truth in the view as a boolean (size, size) region}."""
    return {
        label: truth if isinstance(truth, np.ndarray) else box_mask(truth, (size, size))
        for label, truth in truth_in_view(case, geometry, size).items()
    }


def faithfulness_drops(
    model: AttentionClassifier,
    probabilities: Callable[[torch.Tensor], torch.Tensor],
    cases: Sequence[TruthCase],
    maps: Sequence[StudyMap],
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
    regions: Regions | None = None,
    lung_model=None,
) -> tuple[dict[str, Drops], dict[str, list[int]]]:
    """Blanking drops per map key (`core.study.blanking`), and each map's own grid size (h, w).

    `probabilities` turns logits (B, L) into the run's probabilities. Each (film, finding) with a
    non-empty truth region in the view counts once; the region to blank has the truth's area. The
    random placements come from one seeded generator per map, consumed in case order. `regions`
    gives each case's {label: region in the view} when not its truth (films without outlines).
    `lung_model` finds the lung fields of a model with a lung prior.
    """
    regions = regions or truth_regions
    size = model.config.image_size
    labels = list(model.config.labels)
    rngs = {m.key: np.random.default_rng([seed, i]) for i, m in enumerate(maps)}
    drops = {m.key: Drops.empty() for m in maps}
    sizes: dict[str, list[int]] = {}

    def predict(batch: torch.Tensor) -> torch.Tensor:
        return probabilities(model(batch))

    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        loaded = [film_input(case.path, model.config, lung_model) for case in chunk]
        pairs = []  # (image in chunk, label, truth region in the view)
        for b, (case, film) in enumerate(zip(chunk, loaded, strict=True)):
            for label, plain in regions(case, film.geometry, size).items():
                region = film.truth(plain)
                if region.any():
                    pairs.append((b, label, region))
        if not pairs:
            continue
        x = config_input(np.stack([film.view for film in loaded]), model.config, device)
        with torch.no_grad():
            before = probabilities(model(x)).double().cpu().numpy()
        black = black_baseline(model, x[:1])
        rows = [b for b, _, _ in pairs]
        indices = [labels.index(label) for _, label, _ in pairs]
        images = x[rows]
        shares = [region.mean() for _, _, region in pairs]
        wanted = sorted({label for _, label, _ in pairs})
        for m in maps:
            explanation = explain(model, x, wanted, m.method, stage=m.stage)
            sizes[m.key] = list(explanation.map_size)
            own, moved = [], []
            for b, label, region in pairs:
                top = top_region(explanation.ranked(label, image=b), int(region.sum()))
                own.append(top)
                moved.append(random_placement(top, rngs[m.key]))
            after = [
                blanked_probabilities(
                    predict, images, torch.from_numpy(np.stack(r)), indices, black, batch_size
                )
                for r in (own, moved)
            ]
            drops[m.key].extend(
                [label for _, label, _ in pairs], before[rows, indices], *after, shares
            )
    return drops, sizes


def run_study(
    run: str | Path,
    data: str | Path | None = None,
    split: str = "test",
    limit: int | None = None,
    truth: str = "auto",
    batch_size: int = 16,
    map_threshold: float = MAP_THRESHOLD,
    seed: int = 0,
    device: str | None = None,
    repeats: int = 7,
    lungs: bool = True,
    lung_model: LungModel | None = None,
    own_lungs: bool = True,
) -> dict[str, Any]:
    """Study one run and write RUN/study.json (see the module docstring); returns its dict.

    `data` defaults to the dataset the run was trained on; `limit` keeps the first N films (by image
    id) of `split` that carry truth; `seed` seeds the random maps and random regions; `repeats`
    forward passes are timed per model for the latency. With `lungs`, every map is also held to the
    films' lung fields (`core.study.lungs`: the collection's own masks when `own_lungs` and it has
    them, else `lung_model`, by default the shipped one). Films without lesion outlines (real
    collections) are studied all the same: their maps against the lung fields, and the blanking
    check with a fixed share of the view (`core.study.open_blanking`).
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if not 0.0 < map_threshold < 1.0:
        raise ConfigError(f"map threshold must lie strictly between 0 and 1, got {map_threshold}")
    opened = open_run_for_maps(run, data, device)
    folder, checkpoint, index, device_t = (
        opened.folder, opened.checkpoint, opened.index, opened.device
    )  # fmt: skip
    model = checkpoint.model
    frame = index.split(split)
    labels = list(checkpoint.labels)
    cases, truth_kind = truth_cases(index, frame, labels, truth)
    outlined = bool(cases)
    if not outlined:
        if truth != "auto" or not lungs:
            raise DatasetError(
                f"no {truth_kind} for this model's labels among the {len(frame)} {split} images "
                f"of {index.root}: choose another --split (ChestX-ray14's boxes are all in "
                "test_list.txt)"
            )
        cases, truth_kind = labelled_cases(frame, labels), "none"
        if not cases:
            raise DatasetError(f"no {split} film of {index.root} carries one of {labels}")
    cases = cases[:limit] if limit is not None else cases
    prior_lungs = lung_model_for([model.config], lung_model)
    cases, unreadable = usable_cases(cases, model.config, prior_lungs)
    maps = study_maps(model)
    common = {"run": folder.name, "split": split, "n_images": len(cases), "source": index.source}
    entries: dict[str, dict[str, Any]] = {
        m.key: {"method": m.method, "stage": m.stage, "own": m.own} for m in maps
    }
    if outlined:
        for m in maps:
            entries[m.key] |= lesion_entry(
                model, cases, m, labels, common, batch_size, map_threshold, seed, device_t,
                prior_lungs,
            )  # fmt: skip
    lungs_found = None
    if lungs:
        lungs_found = lung_cases(cases, lung_model, own_lungs)
        for m in maps:
            log.info("study of %s: holding %s to the lung fields", folder.name, m.key)
            scored = score_lung_cases(
                model, lungs_found, m.method, m.stage, batch_size, seed, device_t, prior_lungs
            )
            entries[m.key]["lungs"] = lung_section(scored)
    log.info("study of %s: blanking the attended regions", folder.name)
    regions = None if outlined else fixed_regions(REGION_SHARE)
    drops, sizes = faithfulness_drops(
        model, checkpoint.probabilities, cases, maps, batch_size, seed, device_t, regions,
        prior_lungs,
    )  # fmt: skip
    for m in maps:
        entries[m.key]["map_size"] = sizes.get(m.key)
        entries[m.key]["faithfulness"] = summarize_drops(drops[m.key], labels)
    cost = measure_cost(model, repeats=repeats)
    config = model.config
    report = {
        "run": folder.name,
        "backbone": config.backbone,
        "kind": config.kind,
        "mechanism": KIND_TITLES[config.kind] if config.kind else BASELINE_TITLE,
        "class_specific": model.class_specific,
        "image_size": config.image_size,
        "output_stride": config.output_stride,
        "attention_stages": list(config.attention_stages)
        if model.gate_names and not (model.class_specific)
        else [],
        "data": {
            "root": str(Path(index.root).resolve()),
            "source": index.source,
            "split": split,
            "truth": truth_kind,
            "n_images": len(cases),
            "n_truth": entries[maps[-1].key]["localization"]["n_boxes"] if outlined else 0,
            "region_share": None if outlined else REGION_SHARE,
            "lung_prior": config.lung_prior,
            "without_lung_fields": len(unreadable),
        },
        "lungs": lungs_found.describe() if lungs_found is not None else None,
        "own_map": next((m.key for m in reversed(maps) if m.own), None),
        "maps": {m.key: entries[m.key] for m in maps},
        "cost": cost.as_json(),
        "seed": seed,
        "limit": limit,
        "map_threshold": map_threshold,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "package_version": core.__version__,
    }
    write_json(folder.path / STUDY, report)
    log.info("study of %s written to %s", folder.name, folder.path / STUDY)
    return report


def lesion_entry(
    model, cases, m: StudyMap, labels, common, batch_size, map_threshold, seed, device, lung_model
) -> dict[str, Any]:
    """One map's scores against the lesion truth, and its random control's."""
    scores, stage = score_cases(
        model, cases, (m.method, "random"), batch_size, map_threshold, seed, device, lung_model,
        stage=m.stage,
    )  # fmt: skip
    return {
        "localization": localization_report(
            scores[m.method], labels, method=m.method, map_stage=stage, **common
        ),
        "random": localization_report(
            scores["random"], labels, method="random", map_stage="random", **common
        ),
        "pointing_vs_random": pointing_vs_random(scores[m.method], scores["random"]),
    }
