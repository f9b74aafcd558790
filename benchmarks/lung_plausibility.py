"""Which images the lung model refuses: every outlined adult film and paediatric film should pass,
every image that is not a frontal chest film should not (issue 35: "never a confident mask of
nothing"). Prints, per set, how many pass and the figures the checks read (core/lungs/plausible.py).

    python benchmarks/lung_plausibility.py [--adult ../shared/realdata-lungs]
        [--children ../shared/realdata-pneumonia] [--nih ../shared/realdata] [--limit N]

Generated images that are not chest films: the OOD probes' five (noise, checkerboard, gradient, a
page of text, a bright disc), a drawn axial CT-like slice (a round body with two dark lungs), a
drawn hand, and a blank image. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from cxr_attention.core.data.radiograph import iter_radiograph_files, load_radiograph
from cxr_attention.core.errors import RadiographError
from cxr_attention.core.lungs.segment import segment_lungs
from cxr_attention.core.lungs.shipped import shipped_lung_model
from cxr_attention.core.ood_probes import not_a_chest


def drawn_non_chest(folder: Path) -> list[Path]:
    """A CT-like axial slice, a hand, a blank image."""
    size = 256
    yy, xx = np.mgrid[:size, :size]
    ct = np.zeros((size, size), np.uint8)
    cv2.ellipse(ct, (128, 128), (110, 80), 0, 0, 360, 150, -1)  # body
    cv2.ellipse(ct, (85, 120), (32, 50), 0, 0, 360, 20, -1)  # right lung
    cv2.ellipse(ct, (171, 120), (32, 50), 0, 0, 360, 20, -1)  # left lung
    cv2.circle(ct, (128, 185), 16, 240, -1)  # vertebra
    cv2.ellipse(ct, (128, 110), (25, 30), 0, 0, 360, 170, -1)  # heart
    hand = np.full((size, size), 15, np.uint8)
    cv2.ellipse(hand, (128, 190), (55, 50), 0, 0, 360, 170, -1)  # palm
    for i, x in enumerate((85, 110, 135, 160)):
        cv2.rectangle(hand, (x - 9, int(40 + 10 * abs(i - 1.5))), (x + 9, 170), 170, -1)  # fingers
    cv2.rectangle(hand, (175, 150), (210, 175), 170, -1)  # thumb
    hand = cv2.GaussianBlur(hand, (0, 0), 2)
    images = {"ct_slice": ct, "hand": hand, "blank": np.full((size, size), 128, np.uint8)}
    paths = []
    for name, pixels in images.items():
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), pixels)
        paths.append(path)
    return paths


def judge(name: str, paths: list[Path], model) -> None:
    passed, reasons, shares = 0, Counter(), []
    refused_names = []
    for path in paths:
        try:
            film = load_radiograph(path)
        except RadiographError as exc:
            reasons[f"unreadable: {str(exc)[:60]}"] += 1
            continue
        found = segment_lungs(film, model)
        figures = found.check.figures
        shares.append(figures.get("share", 0.0))
        if found.plausible:
            passed += 1
        else:
            reasons[found.check.reason.split(":")[0][:70]] += 1
            refused_names.append(path.name)
    print(f"{name}: {passed} of {len(paths)} pass; field share median {np.median(shares):.2f}")
    for reason, count in reasons.most_common():
        print(f"    refused {count}: {reason}")
    if refused_names and len(paths) <= 30:
        print(f"    refused: {', '.join(refused_names)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adult", type=Path)
    parser.add_argument("--children", type=Path)
    parser.add_argument("--nih", type=Path)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    model = shipped_lung_model()
    with tempfile.TemporaryDirectory() as tmp:
        generated = not_a_chest(Path(tmp) / "probes") + drawn_non_chest(Path(tmp))
        for path in generated:
            judge(path.stem, [path], model)
    sets = {"adult outlined films": args.adult and args.adult / "films",
            "paediatric films": args.children, "NIH films and DICOM": args.nih and args.nih / "images"}  # fmt: skip
    for name, folder in sets.items():
        if folder:
            paths = list(iter_radiograph_files([folder]))[: args.limit]
            judge(name, paths, model)


if __name__ == "__main__":
    main()
