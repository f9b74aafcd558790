"""Probe a model's out-of-distribution warning with images it must find unlike its training films.

`probe_sets` draws two sets into a folder: phantom films (the project's synthetic radiographs, with
a seed no model trained on) and generated images that are not chest films at all (noise, a
checkerboard, a gradient, a page of text, a bright disc). `flag_shares` scores any sets of files
with one checkpoint and says, per set, how many it flags and its mean probability of each label.
A model that learnt real films should flag both probe sets; one that learnt the phantom should flag
real films and the non-chest images. RUN/trust.json keeps the figures beside a shipped model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

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
    from cxr_attention.core.inference import ImageFailure, ScoringModel, predict_files
    from cxr_attention.core.models.checkpoint import load_checkpoint

    model = ScoringModel("model", load_checkpoint(checkpoint, device=device))
    out = {}
    for name, paths in sets.items():
        flags: list[bool] = []
        probabilities: list[np.ndarray] = []
        described = True
        refused = 0
        for batch in predict_files([model], list(paths), workers=0, device=device):
            if isinstance(batch, ImageFailure):
                refused += 1
                continue
            verdicts = batch.ood[model.tag]
            described = verdicts is not None
            flags += [v.flagged for v in verdicts or []]
            probabilities.append(batch.probabilities[model.tag])
        scores = (
            np.concatenate(probabilities) if probabilities else np.zeros((0, len(model.labels)))
        )
        n = int(scores.shape[0])
        out[name] = {
            "n": n,
            "flagged": int(sum(flags)),
            "share": float(np.mean(flags)) if flags and described else None,
            "refused": refused,
            "mean_probability": {
                label: float(scores[:, k].mean()) if n else None
                for k, label in enumerate(model.labels)
            },
        }
    return out
