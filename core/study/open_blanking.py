"""The blanking check on films without lesion outlines: RUN/blanking.json.

Real collections such as Kermany's paediatric pneumonia films say which films show a finding, not
where it is. Pointing, IoBB and energy cannot be measured on them, and none is written. What can be
measured is whether the score depends on what a map shows: for each held-out film labelled with a
finding, the map's `REGION_SHARE` highest pixels of the model view are set to black and the
finding's probability is read again; the control blanks a region of the same size and shape placed
at random (`core.study.blanking`). The region's size is a fixed share of the view because there is
no lesion to size it by: an eighth of the film is about one lung zone.

RUN/blanking.json (NaN written as null):

    run, backbone, kind, mechanism, class_specific, image_size
    data        {root, source, split, truth: "none", n_images, region_share}
    lesion_outlines  the sentence that says none are there, for every page that shows the file
    own_map     the key in `maps` of the model's own map (null for a baseline)
    maps        {key: {method, stage, own, map_size, faithfulness}} (study.json's faithfulness)
    seed, limit, created, package_version
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from cxr_attention import core
from cxr_attention.core.errors import ConfigError, DatasetError
from cxr_attention.core.explain.localize_run import (
    labelled_cases,
    open_run_for_maps,
    usable_cases,
)
from cxr_attention.core.lungs.views import lung_model_for
from cxr_attention.core.models.kinds import KIND_TITLES
from cxr_attention.core.runs import write_json
from cxr_attention.core.study.blanking import REGION_SHARE, fixed_regions, summarize_drops
from cxr_attention.core.study.run import BASELINE_TITLE, faithfulness_drops, study_maps

log = logging.getLogger(__name__)

BLANKING = "blanking.json"
NO_OUTLINES = (
    "these films have no lesion outlines: no pointing game, IoBB or energy in the lesion can be "
    "measured on them"
)


def run_open_blanking(
    run: str | Path,
    data: str | Path | None = None,
    split: str = "test",
    limit: int | None = None,
    share: float = REGION_SHARE,
    batch_size: int = 16,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """Blank every map of the run on `split`'s films with a finding; write RUN/blanking.json."""

    if not 0.0 < share < 1.0:
        raise ConfigError(f"the blanked share must lie strictly between 0 and 1, got {share}")
    opened = open_run_for_maps(run, data, device)
    folder, checkpoint, index, device_t = (
        opened.folder, opened.checkpoint, opened.index, opened.device
    )  # fmt: skip
    model = checkpoint.model
    labels = list(checkpoint.labels)
    cases = labelled_cases(index.split(split), labels)
    if not cases:
        raise DatasetError(f"no {split} film of {index.root} carries one of {', '.join(labels)}")
    cases = cases[:limit] if limit is not None else cases
    lung_model = lung_model_for([model.config])
    cases, _ = usable_cases(cases, model.config, lung_model)
    maps = study_maps(model)
    log.info("blanking the maps of %s on %d films", folder.name, len(cases))
    drops, sizes = faithfulness_drops(
        model, checkpoint.probabilities, cases, maps, batch_size, seed, device_t,
        regions=fixed_regions(share), lung_model=lung_model,
    )  # fmt: skip
    config = model.config
    report = {
        "run": folder.name,
        "backbone": config.backbone,
        "kind": config.kind,
        "mechanism": KIND_TITLES[config.kind] if config.kind else BASELINE_TITLE,
        "class_specific": model.class_specific,
        "image_size": config.image_size,
        "data": {
            "root": str(Path(index.root).resolve()),
            "source": index.source,
            "split": split,
            "truth": "none",
            "n_images": len(cases),
            "region_share": share,
        },
        "lesion_outlines": NO_OUTLINES,
        "own_map": next((m.key for m in reversed(maps) if m.own), None),
        "maps": {
            m.key: {
                "method": m.method,
                "stage": m.stage,
                "own": m.own,
                "map_size": sizes.get(m.key),
                "faithfulness": summarize_drops(drops[m.key], labels),
            }
            for m in maps
        },
        "seed": seed,
        "limit": limit,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "package_version": core.__version__,
    }
    write_json(folder.path / BLANKING, report)
    return report
