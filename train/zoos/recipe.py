"""What a zoo is made of: its models (a grid of backbones and attention kinds, plus extra models)
and the data it learns, as ZOO.json records it.

A zoo trains every backbone as a baseline and with each of its attention kinds (the sweep's grid,
`train.commands.sweep.grid`), and may add extra models: a backbone and kind of the grid trained with
other options, shipped under a folder name of its own and with a note saying how it differs ("trained
without the lung prior"). One model's fit options are, in order, the preset's, the zoo's
`fit_options`, its kind's (`kind_options`), its grid cell's (`variant_options`) and, for an extra,
its own.

`PhantomRecipe` is a zoo learnt on the synthetic phantom (drawn here, scored against its lesion
masks); `FilmsRecipe` one learnt on a collection of real films given as `--data DIR` (scored on
the patients held out at training). The zoos' own recipes are in `train.zoos.recipes`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.models.kinds import (
    ATTENTION_KINDS,
    DEFAULT_KIND,
    parse_variant,
    variant_name,
)
from cxr_attention.train.commands.sweep import Variant, grid

# fit options that choose which films are held out (the seed carves the split too)
SPLIT_OPTIONS = frozenset({"seed", "val_fraction", "test_fraction", "labels", "views"})


@dataclass(frozen=True)
class ZooModel:
    """One model of a zoo: its folder, backbone and attention kind, and its own fit options."""

    name: str  # its run folder and shipped folder, e.g. "mobilenetv2_100+class"
    backbone: str
    kind: str | None  # attention kind (core.models.kinds); None for the baseline
    options: dict[str, Any] = field(default_factory=dict)  # on top of its kind's and cell's
    note: str = ""  # how an extra model differs from its grid cell, in words; "" for the grid's

    @property
    def variant(self) -> Variant:
        """Its cell of the grid (`train.commands.sweep.variant_options` reads backbone and kind)."""
        return Variant(self.backbone, self.kind is not None, self.kind or DEFAULT_KIND)

    @property
    def cell(self) -> str:
        """The grid cell's name (the extra's twin): "mobilenetv2_100+class"."""
        return variant_name(self.backbone, self.kind)


@dataclass(frozen=True)
class ModelGrid:
    """The models of a zoo and their fit options."""

    preset: str = ""  # train/presets/<preset>.yaml: every model's options start from it
    backbones: tuple[str, ...] = ()
    # attention kinds trained beside each backbone's baseline; a backbone not named gets
    # `default_kinds`
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default_kinds: tuple[str, ...] = (DEFAULT_KIND,)
    fit_options: dict[str, Any] = field(default_factory=dict)  # every model, on top of the preset
    # every model of a kind ("spatial", "cbam", "class" or "baseline")
    kind_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    variant_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # one grid cell
    extras: tuple[ZooModel, ...] = ()  # more models of a grid cell, trained with other options

    def __post_init__(self) -> None:
        names = [v.name for v in self.variants()]
        for kind in (*self.default_kinds, *(k for ks in self.kinds.values() for k in ks)):
            if kind not in ATTENTION_KINDS:
                raise ConfigError(f"zoo recipe: {kind!r} is no attention kind {ATTENTION_KINDS}")
        for extra in self.extras:
            problem = (
                "needs a name of its own" if extra.name in names
                else f"has no grid cell {extra.cell} to differ from" if extra.cell not in names
                else "needs a note saying how it differs" if not extra.note
                else ""
            )  # fmt: skip
            if problem:
                raise ConfigError(f"zoo recipe: the extra model {extra.name} {problem}")
            names.append(extra.name)

    def variants(self) -> list[Variant]:
        """The grid (train.commands.sweep.Variant), each backbone's baseline first."""
        kinds = self.kinds
        return [v for b in self.backbones for v in grid([b], kinds.get(b, self.default_kinds))]

    def models(self) -> list[ZooModel]:
        """Every model: the grid's, each with its kind's and cell's options, then the extras with
        their cell's options under their own."""
        cells = {}
        for variant in self.variants():
            kind = variant.kind if variant.attention else None
            options = self.kind_options.get(kind or "baseline", {})
            options = dict(options) | self.variant_options.get(variant.name, {})
            cells[variant.name] = ZooModel(variant.name, variant.backbone, kind, options)
        extras = [
            ZooModel(e.name, e.backbone, e.kind, cells[e.cell].options | e.options, e.note)
            for e in self.extras
        ]
        return [*cells.values(), *extras]

    def model_names(self) -> list[str]:
        return [model.name for model in self.models()]

    def on_backbones(self, backbones: tuple[str, ...]):
        """The same grid on `backbones` (the demo's hidden --backbones: a tiny zoo for tests): a
        backbone the recipe does not name gets the kinds and grid-cell options of its first one.
        Extras of the backbones left out are left out."""

        def like(backbone: str) -> str:
            return backbone if backbone in self.backbones else self.backbones[0]

        kinds = {b: self.kinds[like(b)] for b in backbones if like(b) in self.kinds}
        cells = {}
        for b in backbones:
            for name, options in self.variant_options.items():
                source, kind = parse_variant(name)
                if source == like(b):
                    cells[variant_name(b, kind)] = options
        extras = tuple(e for e in self.extras if e.backbone in backbones)
        return replace(
            self, backbones=tuple(backbones), kinds=kinds, variant_options=cells, extras=extras
        )

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values (lists for tuples), as ZOO.json and DEMO.json hold them."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        """The recipe a ZOO.json records; keys it lacks (from before they existed) take their
        defaults, and a zoo from before attention kinds had the spatial gate only."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key, value in values.items():
            if isinstance(value, list) and key != "extras":
                values[key] = tuple(value)
        values["kinds"] = {b: tuple(k) for b, k in (values.get("kinds") or {}).items()}
        values["extras"] = tuple(
            ZooModel(**(e | {"kind": e.get("kind")})) for e in values.get("extras", ())
        )
        return cls(**values)


@dataclass(frozen=True)
class PhantomRecipe(ModelGrid):
    """A zoo learnt on the synthetic phantom: the phantoms it learns and is scored on."""

    train_images: int = 3000  # training phantom (train/val lists; its test list is not used)
    eval_images: int = 3000  # the evaluation phantom: as many films as the demo's
    size: int = 256  # both phantoms' side in pixels
    train_seed: int = 0
    eval_seed: int = 2026  # no model ever trains on this seed
    difficulty: str = "teaching"
    localize_limit: int = 300  # test films with lesion masks scored per run


@dataclass(frozen=True)
class FilmsRecipe(ModelGrid):
    """A zoo learnt on a collection of real films (`--data DIR`): scored on the patients held out
    at training, its maps blanked, its OOD warning probed; the films have no lesion outlines."""

    collection: str = ""  # the zoo's short name: its folder zoo-<collection>, its work folder
    title: str = ""  # what the models learnt, in the words every page uses
    held_out: str = ""  # which films the figures come from, in words (ZOO.json's "held_out")
    blanking_limit: int = 300  # held-out films with the finding whose maps are blanked
    probe_films: int = 1000  # the probe phantom's size (about a fifth of it is drawn)

    def __post_init__(self) -> None:
        super().__post_init__()
        # the zoo's figures compare its models on the same held-out patients (DeLong, paired)
        for model in self.models():
            moved = sorted(SPLIT_OPTIONS & set(model.options))
            if moved:
                raise ConfigError(
                    f"zoo recipe: {model.name}'s {moved[0]} would hold out other patients than "
                    "the zoo's other models: set it for the whole zoo (fit_options)"
                )
