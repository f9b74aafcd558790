"""The registry of zoos: every set of small models the package ships, and where the demo puts it.

| zoo | ships in | learnt | the demo installs it in |
| --- | --- | --- | --- |
| phantom | assets/zoo | the synthetic phantom (drawn here) | DIR/runs/<model> |
| pneumonia | assets/zoo-pneumonia | Kermany et al.'s paediatric films (`--data DIR`) | DIR/runs/real-films/<model> |

The first is the demo's own: `cxr-attention demo` evaluates it on a phantom drawn here (or installs
its shipped evaluation of those very films). Every other zoo learnt real films and is installed
beside it with its shipped evaluation. A new zoo is one entry here and its recipe
(`train.zoos.recipes`); `cxr-attention demo --retrain --data DIR --zoo assets/zoo-<name>` makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cxr_attention.core.errors import ConfigError
from cxr_attention.train.zoos.recipe import FilmsRecipe, PhantomRecipe
from cxr_attention.train.zoos.recipes import PHANTOM, PNEUMONIA

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@dataclass(frozen=True)
class Zoo:
    """One shipped zoo."""

    name: str  # its short name: "phantom", or the collection a films zoo learnt
    folder: Path  # where it ships (package data; never written by the demo)
    recipe: PhantomRecipe | FilmsRecipe
    runs: str  # its folder under the demo's runs folder ("" for the runs folder itself)

    def __post_init__(self) -> None:
        if self.learns_films and not self.runs:
            raise ConfigError(f"zoo {self.name}: a films zoo needs a runs folder of its own")

    @property
    def learns_films(self) -> bool:
        """Learnt a collection given as `--data DIR` (not the phantom)."""
        return isinstance(self.recipe, FilmsRecipe)

    @property
    def command(self) -> str:
        """The recorded command that makes it (ZOO.json's "command")."""
        data = " --data DIR" if self.learns_films else ""
        return f"cxr-attention demo --retrain{data} --zoo assets/{self.folder.name}"


ZOOS: tuple[Zoo, ...] = (
    Zoo("phantom", ASSETS / "zoo", PHANTOM, runs=""),
    Zoo(PNEUMONIA.collection, ASSETS / "zoo-pneumonia", PNEUMONIA, runs="real-films"),
)
PHANTOM_ZOO = ZOOS[0]  # the demo's own


def zoo_named(name: str) -> Zoo:
    for zoo in ZOOS:
        if zoo.name == name:
            return zoo
    raise ConfigError(f"no zoo called {name}: choose one of {', '.join(z.name for z in ZOOS)}")


def films_zoos() -> list[Zoo]:
    """The zoos installed beside the demo's own, in the registry's order."""
    return [zoo for zoo in ZOOS if zoo.learns_films]


def shipped_at(folder: Path) -> Zoo | None:
    """The registered zoo that ships in `folder`, if any."""
    folder = Path(folder).expanduser().resolve()
    return next((zoo for zoo in ZOOS if zoo.folder == folder), None)


def films_zoo_for(folder: Path, recorded: str | None = None) -> Zoo:
    """The films zoo that `--data DIR --zoo FOLDER` makes: the one its ZOO.json records
    (`recorded`, the recipe's collection), else the one whose folder is named like FOLDER
    (zoo-<name>), else the only one registered."""
    zoos = films_zoos()
    by_name = {zoo.name: zoo for zoo in zoos}
    by_folder = {zoo.folder.name: zoo for zoo in zoos}
    if recorded in by_name:
        return by_name[recorded]
    if Path(folder).name in by_folder:
        return by_folder[Path(folder).name]
    if len(zoos) == 1:
        return zoos[0]
    names = ", ".join(z.folder.name for z in zoos)
    raise ConfigError(f"--zoo {folder} names no zoo of real films: call its folder one of {names}")
