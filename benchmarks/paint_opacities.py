"""Adult normal films with opacities painted into their lung fields: a proxy for "inside the opacity".

`../shared/realdata-lungs` outlines the lungs, not the opacities. Its normal films (`*_0.png`,
sorted by name) are painted here with the lung segmenter's augmentation shapes
(`core.lungs.augment.opacity_shapes`: consolidations, an effusion, a haze, a whited-out lung), each
film with its own seed [7, i] (i its place among the sorted normals, so a film is painted the same
in any range), towards soft-tissue brightness. The painted region (density > 0.5) is the film's
mask; a haze fainter than that leaves an empty mask, and `localize` leaves that film out.

    python benchmarks/paint_opacities.py --adult ../shared/realdata-lungs --out DIR [--start 80]
    cxr-attention localize RUN --method attention --films DIR/films-opacified --masks DIR/opacities

`benchmarks/lung_recipes.py` chose its recipes on the first 80 normals (`--start 0 --n 80`); the
other 279 (`--start 80`) are a second set that no choice was made on. Nothing is asserted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

SEED = 7


def opacified_adults(
    adult: Path, out: Path, start: int = 0, n: int | None = 80
) -> tuple[Path, Path]:
    """Normal adult films `start` to `start + n` (by name; n None: to the last) with opacities
    painted into their lung fields, in out/films-opacified, the painted regions in out/opacities
    (the films carry no lung masks of their own there, so `--masks` scores the opacities)."""
    from cxr_attention.core.lungs.augment import opacity_shapes

    films, masks = out / "films-opacified", out / "opacities"
    normals = sorted((adult / "films").glob("*_0.png"))
    if not normals or not (adult / "masks").is_dir():
        raise SystemExit(f"{adult}: no normal films (films/*_0.png) with masks/ beside them")
    chosen = list(enumerate(normals))[start : None if n is None else start + n]
    if films.is_dir() and len(list(films.glob("*.png"))) == len(chosen):
        return films, masks
    films.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for i, path in chosen:
        film = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        lungs = cv2.imread(str(adult / "masks" / path.name), cv2.IMREAD_GRAYSCALE) > 127
        density = opacity_shapes(lungs, np.random.default_rng([SEED, i]))
        values = film.astype(np.float32)
        tissue = float(np.percentile(values[values > 10], 85))
        painted = values * (1 - density) + np.maximum(values, tissue) * density
        cv2.imwrite(str(films / path.name), np.clip(painted, 0, 255).astype(np.uint8))
        cv2.imwrite(str(masks / path.name), (density > 0.5).astype(np.uint8) * 255)
    return films, masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adult", required=True, type=Path, help="../shared/realdata-lungs")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--start", type=int, default=80, help="first normal film, by name")
    parser.add_argument("--n", type=int, help="how many (default: to the last)")
    args = parser.parse_args()
    films, masks = opacified_adults(args.adult, args.out, args.start, args.n)
    empty = sum(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).max() == 0 for p in masks.glob("*.png"))
    print(
        f"{len(list(films.glob('*.png')))} films in {films}, their opacities in {masks} "
        f"({empty} with a haze too faint to outline: localize leaves them out)"
    )


if __name__ == "__main__":
    main()
