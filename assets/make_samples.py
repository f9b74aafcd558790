"""Regenerate the phantom samples in assets/samples/ (images, masks and samples.json).

    .venv/bin/python assets/make_samples.py

Six synthetic 256 px films from the project's own generator (never patient data), one per
showcased finding plus a normal film, each with its lesion masks and boxes, for the app's demo and
the README. Deterministic: rerunning rewrites identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from cxr_attention.core.data.phantom import GENERATOR_VERSION, plan_dataset, render_case
from cxr_attention.core.data.phantom.casemix import base_rates, sample_findings
from cxr_attention.core.data.phantom.difficulty import TEACHING

SEED = 2024
SIZE = 256
POOL = 600  # planned films searched for the showcased findings
# (file stem, the finding it shows; None = a normal film)
SHOWCASE: tuple[tuple[str, str | None], ...] = (
    ("phantom_normal", None),
    ("phantom_nodule", "Nodule"),
    ("phantom_mass", "Mass"),
    ("phantom_effusion", "Effusion"),
    ("phantom_pneumothorax", "Pneumothorax"),
    ("phantom_cardiomegaly", "Cardiomegaly"),
)
# The film the app's Explore page opens on: a compact lesion the maps can be judged against (the
# normal film teaches nothing about where attention looks).
DEFAULT = "phantom_mass"
OUT = Path(__file__).resolve().parent / "samples"
RATES = base_rates(TEACHING.rare_floor)  # the default (teaching) phantom's case mix


def conspicuity(image: np.ndarray, mask: np.ndarray) -> float:
    """Grey levels by which a lesion stands out from a ring of film around it."""
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~mask
    return float(image[mask].mean() - image[ring].mean())


def pick(label: str | None, plan: list, taken: set[int]) -> int:
    """The plan index of the clearest film that shows `label` alone (a PA film for the normal)."""
    candidates = []
    for index in range(POOL):
        found = sample_findings(np.random.default_rng([SEED, index]), RATES)
        if index not in taken and found == ((label,) if label else ()):
            candidates.append(index)
        if len(candidates) == 8:
            break
    if not candidates:
        raise SystemExit(f"no film with {label} alone among the first {POOL}: raise POOL")
    if label is None:
        views = [render_case(plan[i], SIZE, SEED).view for i in candidates]
        return candidates[views.index("PA")] if "PA" in views else candidates[0]
    scores = []
    for index in candidates:
        case = render_case(plan[index], SIZE, SEED)
        scores.append(abs(conspicuity(case.image, case.masks[label])))
    return candidates[int(np.argmax(scores))]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    plan = plan_dataset(POOL, SEED)
    taken: set[int] = set()
    samples = []
    for stem, label in SHOWCASE:
        index = pick(label, plan, taken)
        taken.add(index)
        case = render_case(plan[index], SIZE, SEED)
        cv2.imwrite(str(OUT / f"{stem}.png"), case.image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        masks = {}
        for finding, mask in case.masks.items():
            name = f"{stem}_{finding}.png"
            cv2.imwrite(str(OUT / name), mask.astype(np.uint8) * 255)
            masks[finding] = name
        samples.append(
            {
                "image": f"{stem}.png",
                "shows": label or "No Finding",
                "findings": list(case.findings),
                "view": case.view,
                "age": case.plan.age,
                "sex": case.plan.sex,
                "boxes": {finding: list(box) for finding, box in case.boxes.items()},
                "masks": masks,
                "phantom_index": index,
            }
        )
    manifest = {
        "note": "synthetic phantom films made by cxr-attention, not patient data",
        "generator_version": GENERATOR_VERSION,
        "seed": SEED,
        "difficulty": TEACHING.name,
        "size": SIZE,
        "boxes": "x, y, w, h in pixels of the image (the masks' bounding boxes)",
        "regenerate": "python assets/make_samples.py",
        "default": f"{DEFAULT}.png",
        "samples": samples,
    }
    (OUT / "samples.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(samples)} samples to {OUT}")


if __name__ == "__main__":
    main()
