"""Films with their lung-field masks: the layout, the groups (centres) and the splits.

A collection of outlined films keeps `ROOT/films/NAME` and `ROOT/masks/NAME` under the same names
(the layout of ../shared/realdata-lungs, and of the phantom's `lungs/` beside its `images/`); a
mask is 0 outside the lung fields and non-zero inside, both lungs in one file, at the film's size.
A film's group is the part of its name before the first underscore (`MCUCXR_0001_0.png` ->
`MCUCXR`, Montgomery; `CHNCXR_...` -> Shenzhen): the centre that made it, which splits must keep
apart to say how a segmenter does on a centre it never saw. Names that start with digits alone
(the phantom's `00000007_000.png`) take the collection's own name as their group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxr_attention.core.data.radiograph import SUPPORTED_SUFFIXES
from cxr_attention.core.errors import ConfigError, DatasetError

FILMS, MASKS = "films", "masks"
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class OutlinedFilm:
    """One film and its lung-field mask, and the group (centre) it came from."""

    name: str
    film: Path
    mask: Path
    group: str


def group_of(name: str, collection: str) -> str:
    """The centre a film's name says it came from: the part before the first underscore when it
    has a letter (`MCUCXR`, `CHNCXR`); otherwise (the phantom's numbered films) the collection."""
    prefix = Path(name).stem.split("_", 1)[0]
    return prefix if any(c.isalpha() for c in prefix) else collection


# Folders of films -> the folder beside them that holds their lung masks under the same names:
# realdata-lungs' layout, and the phantom's (its masks/ holds lesions, its lungs/ the fields).
OWN_MASK_FOLDERS = {FILMS: MASKS, "images": "lungs"}


def own_lung_mask(film: str | Path) -> Path | None:
    """The lung mask a collection brings for `film` (ROOT/masks/NAME beside ROOT/films/NAME, or
    ROOT/lungs/NAME beside ROOT/images/NAME), or None."""
    film = Path(film)
    folder = OWN_MASK_FOLDERS.get(film.parent.name)
    if folder is None:
        return None
    mask = film.parent.parent / folder / film.name
    return mask if mask.is_file() else None


def outlined_films(root: str | Path, group: str | None = None) -> list[OutlinedFilm]:
    """Every film of `root` with a lung mask of the same name beside it (films/ and masks/, or a
    phantom's images/ and lungs/), sorted by name.

    A film without its mask (or a mask without its film) is an error that names the first one: a
    segmenter must never learn "no lung" from a missing file. `group` names the films whose names
    say no centre (default: the folder's name).
    """
    root = Path(root)
    layout = next(
        (
            (f, m)
            for f, m in OWN_MASK_FOLDERS.items()
            if (root / f).is_dir() and (root / m).is_dir()
        ),
        None,
    )
    if layout is None:
        raise DatasetError(
            f"{root} does not hold outlined films: it needs {FILMS}/ and {MASKS}/ (or a phantom's "
            "images/ and lungs/) with files of the same names, a film and its lung mask"
        )
    films_dir, masks_dir = root / layout[0], root / layout[1]
    films = {p.name: p for p in films_dir.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES}
    masks = {p.name: p for p in masks_dir.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES}
    lonely = sorted(set(films) ^ set(masks))
    if lonely:
        where = layout[1] if lonely[0] in films else layout[0]
        raise DatasetError(
            f"{root}: {lonely[0]} has no partner in {where}/ ({len(lonely)} unpaired files); "
            "every film needs its mask under the same name"
        )
    if not films:
        raise DatasetError(f"{films_dir} holds no PNG, JPEG or DICOM films")
    collection = group or root.name
    return [
        OutlinedFilm(name, films[name], masks[name], group_of(name, collection))
        for name in sorted(films)
    ]


def split_outlined(
    films: Sequence[OutlinedFilm],
    seed: int = 0,
    fractions: tuple[float, float] = (0.1, 0.2),
    test_group: str | None = None,
) -> dict[str, list[OutlinedFilm]]:
    """{"train", "val", "test"}: a seeded split, stratified by group so that each centre has the
    same shares in each part (`fractions` = validation, test).

    With `test_group`, that centre's films are the test set and validation is carved from the
    others: the figure then says how the segmenter does on a centre it never saw.
    """
    val_share, test_share = fractions
    if not (0 < val_share < 1 and 0 <= test_share < 1 and val_share + test_share < 1):
        raise ConfigError(f"validation and test shares must be in (0, 1), got {fractions}")
    groups = sorted({f.group for f in films})
    if test_group is not None and test_group not in groups:
        raise ConfigError(f"no film of group {test_group!r}: the groups are {', '.join(groups)}")
    parts: dict[str, list[OutlinedFilm]] = {name: [] for name in SPLITS}
    rng = np.random.default_rng(seed)
    for group in groups:
        members = [f for f in films if f.group == group]
        order = rng.permutation(len(members))
        if group == test_group:
            parts["test"] += members
            continue
        test_n = 0 if test_group is not None else round(test_share * len(members))
        val_n = max(1, round(val_share * len(members)))
        for rank, i in enumerate(order):
            split = "test" if rank < test_n else "val" if rank < test_n + val_n else "train"
            parts[split].append(members[i])
    return {name: sorted(part, key=lambda f: f.name) for name, part in parts.items()}
