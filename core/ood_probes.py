"""Probe a model's out-of-distribution warning with images it must find unlike its training films.

`probe_sets` draws two sets into a folder: phantom films (the project's synthetic radiographs, with
a seed no model trained on) and generated images that are not chest films at all (noise, a
checkerboard, a gradient, a page of text, a bright disc). `flag_shares` scores any sets of files
with one checkpoint and says, per set, how many it flags and its mean probability of each label;
`flag_shares_of` does so for several checkpoints in one pass over the files.
A model that learnt real films should flag both probe sets; one that learnt the phantom should flag
real films and the non-chest images. RUN/trust.json keeps the figures beside a shipped model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from cxr_attention.core.inference import PreparedImage, ScoringModel

TRUST = "trust.json"
PROBE_SEED = 9091  # the probe phantom's seed: no zoo trains on it
PROBE_SIZE = 256


def not_a_chest(folder: Path) -> list[Path]:
    """Five generated PNGs that are not chest films, written into `folder`."""
    rng = np.random.default_rng(0)
    size = PROBE_SIZE
    yy, xx = np.mgrid[:size, :size]
    page = np.full((size, size), 245, np.uint8)
    for row in range(20, size - 20, 18):
        cv2.putText(page, "lorem ipsum dolor sit", (10, row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 20, 1)
    images = {
        "noise": rng.integers(0, 256, (size, size), dtype=np.uint8),
        "checkerboard": (((yy // 32 + xx // 32) % 2) * 255).astype(np.uint8),
        "gradient": (xx * 255 // (size - 1)).astype(np.uint8),
        "page_of_text": page,
        "bright_disc": (((yy - 128) ** 2 + (xx - 128) ** 2 < 80**2) * 230 + 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, pixels in images.items():
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), pixels)
        paths.append(path)
    return paths


def phantom_probe(folder: Path, n: int = 1000) -> list[Path]:
    """The test films of a phantom of `n` films (about a fifth of them) drawn with `PROBE_SEED`."""
    from cxr_attention.core.data.phantom import generate_phantom

    if not (folder / "PHANTOM.json").is_file():
        generate_phantom(folder, n, PROBE_SIZE, seed=PROBE_SEED, splits=("test",))
    return sorted((folder / "images").glob("*.png"))


def probe_sets(folder: Path, n_phantom: int = 1000) -> dict[str, list[Path]]:
    """{"phantom films": [...], "not a chest film": [...]} drawn into `folder`."""
    return {
        "phantom films": phantom_probe(folder / "phantom", n_phantom),
        "not a chest film": not_a_chest(folder / "not-a-chest"),
    }


def flag_shares(
    checkpoint: str | Path, sets: Mapping[str, Sequence[Path]], device: str = "cpu"
) -> dict[str, dict[str, Any]]:
    """Per set: n (files scored), flagged (by the OOD warning), share, refused (files never
    scored: unreadable, or without plausible lung fields for a model with a lung prior), and the
    mean probability of each label. A checkpoint without an OOD description flags nothing (share
    null)."""
    return flag_shares_of({"model": checkpoint}, sets, device)["model"]


def flag_shares_of(
    checkpoints: Mapping[str, str | Path], sets: Mapping[str, Sequence[Path]], device: str = "cpu"
) -> dict[str, dict[str, dict[str, Any]]]:
    """`flag_shares` of several checkpoints, keyed as `checkpoints` is, each the figures it would
    give alone. Each file is read, and its lung fields found, once for all of them (finding them
    costs more than a small model's forward pass); a film without plausible lung fields is refused
    only by the models with a lung prior, and a model that reads the whole film still scores it."""
    from cxr_attention.core.inference import ImageFailure, ScoringModel, iter_prepared
    from cxr_attention.core.lungs.views import lung_model_for
    from cxr_attention.core.models.checkpoint import load_checkpoint

    models = [
        ScoringModel(tag, load_checkpoint(path, device=device)) for tag, path in checkpoints.items()
    ]
    lung_model = lung_model_for(m.checkpoint.config for m in models)
    sizes = {m.image_size for m in models}
    out: dict[str, dict[str, dict[str, Any]]] = {m.tag: {} for m in models}
    for name, paths in sets.items():
        tallies = [_Tally(m, device) for m in models]
        for item in iter_prepared(
            paths, sizes, workers=0, lung_model=lung_model, refuse_implausible=False
        ):
            for tally in tallies:
                tally.add(item if not isinstance(item, ImageFailure) else None)
        for tally in tallies:
            out[tally.model.tag][name] = tally.figures()
    return out


class _Tally:
    """One model's verdicts on one set, scored in batches of 32 of the films it accepts (as
    `predict_files` batches them)."""

    BATCH = 32

    def __init__(self, model: ScoringModel, device: str) -> None:
        self.model, self.device = model, device
        self.pending: list[np.ndarray] = []
        self.flags: list[bool] = []
        self.probabilities: list[np.ndarray] = []
        self.described = True
        self.refused = 0

    def add(self, image: PreparedImage | None) -> None:
        """A prepared film, or None for a file that could not be read."""
        from cxr_attention.core.errors import RadiographError

        if image is None:
            self.refused += 1
            return
        try:
            self.pending.append(image.view_for(self.model.checkpoint.config))
        except RadiographError:  # no plausible lung fields, and this model reads them
            self.refused += 1
            return
        if len(self.pending) == self.BATCH:
            self._score()

    def _score(self) -> None:
        from cxr_attention.core.inference import score_views

        scored = score_views(self.model.checkpoint, np.stack(self.pending), self.device)
        self.pending = []
        self.described = scored.ood is not None
        self.flags += [v.flagged for v in scored.ood or []]
        self.probabilities.append(scored.probabilities)

    def figures(self) -> dict[str, Any]:
        if self.pending:
            self._score()
        labels = self.model.labels
        scores = (
            np.concatenate(self.probabilities) if self.probabilities else np.zeros((0, len(labels)))
        )
        n = int(scores.shape[0])
        return {
            "n": n,
            "flagged": int(sum(self.flags)),
            "share": float(np.mean(self.flags)) if self.flags and self.described else None,
            "refused": self.refused,
            "mean_probability": {
                label: float(scores[:, k].mean()) if n else None for k, label in enumerate(labels)
            },
        }
