"""The registry of dataset sources: one `open_dataset` for every layout people hold.

| source | what `--data` names |
| --- | --- |
| chestxray14 | a ChestX-ray14 download (Data_Entry_2017*.csv, images/, lists), or a phantom |
| table | a CSV of image paths and one column per label (`core.data.table`) |
| class_folders | ROOT/{train,val,test}/CLASS/* or ROOT/CLASS/* (`core.data.class_folders`) |

Each produces the one `DatasetIndex` (`core.data.index`) that the cache, loader, training,
evaluation, report and app read. Sources are tried in the table's order; the first that
recognises the path reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxr_attention.core.data.assemble import SplitOptions, assemble
from cxr_attention.core.data.chestxray14 import VIEWS, is_chestxray14, read_chestxray14
from cxr_attention.core.data.class_folders import looks_like_class_folders, read_class_folders
from cxr_attention.core.data.index import DatasetIndex, Finding
from cxr_attention.core.data.table import looks_like_table, read_table
from cxr_attention.core.errors import DatasetError


@dataclass(frozen=True)
class ReadOptions:
    """How to read a dataset: recorded in every run, so evaluation reopens it the same way."""

    labels: str | Sequence[str] = "auto"  # "auto", "all14", "paper13" or label names
    views: tuple[str, ...] = VIEWS  # view positions kept (films of unknown view always are)
    val_fraction: float = 0.1  # of the training patients, for validation
    test_fraction: float = 0.2  # of all patients, when the data gives no test split
    seed: int = 0  # of the validation (and any test) carve-out
    uncertain: str = "zeros"  # a table's -1 labels: "zeros" (U-Zeros) or "ones" (U-Ones)


@dataclass(frozen=True)
class Source:
    """One layout: how to recognise it and how to read it."""

    name: str
    title: str
    recognises: Callable[[Path], bool]
    read: Callable[[Path, ReadOptions], DatasetIndex]


def _read_chestxray14(root: Path, options: ReadOptions) -> DatasetIndex:
    return read_chestxray14(
        root,
        labels=options.labels,
        views=options.views,
        val_fraction=options.val_fraction,
        seed=options.seed,
        test_fraction=options.test_fraction,
    )


def _split_options(options: ReadOptions) -> SplitOptions:
    return SplitOptions(options.val_fraction, options.test_fraction, options.seed)


def _read_class_folders(root: Path, options: ReadOptions) -> DatasetIndex:
    films = read_class_folders(root)
    return assemble(
        films,
        source="class_folders",
        where=f"class folders {films.root}",
        labels=options.labels,
        options=_split_options(options),
        views=options.views,
    )


def _read_table(path: Path, options: ReadOptions) -> DatasetIndex:
    films = read_table(path, options.uncertain)
    return assemble(
        films,
        source="table",
        where=f"table {path.name}",
        labels=options.labels,
        options=_split_options(options),
        views=options.views,
        extra_files=(path,),
        uncertain=options.uncertain,
        cache_name=path.name.split(".")[0],
    )


SOURCES: tuple[Source, ...] = (
    Source("chestxray14", "ChestX-ray14 layout (or a phantom)", is_chestxray14, _read_chestxray14),
    Source("table", "a CSV of image paths and label columns", looks_like_table, _read_table),
    Source("class_folders", "class folders", looks_like_class_folders, _read_class_folders),
)


def find_source(path: Path) -> Source:
    """The first source that recognises `path`; DatasetError saying what each expects."""
    if not path.exists():
        raise DatasetError(f"dataset {path} does not exist: pass a dataset folder or CSV")
    for source in SOURCES:
        if source.recognises(path):
            return source
    raise DatasetError(
        f"{path} is no dataset this reads: expected a ChestX-ray14 folder (Data_Entry_2017.csv), "
        "a CSV of image paths and labels, or class folders (ROOT/CLASS/* or ROOT/train/CLASS/*)"
    )


def open_dataset(
    path: str | Path, options: ReadOptions | None = None, **kwargs: Any
) -> DatasetIndex:
    """Read the dataset at `path` (a folder, or a CSV file) with its source's reader.

    `options` (or its fields as keyword arguments) say which labels, views and split to use.
    """
    options = ReadOptions(**kwargs) if options is None else options
    if isinstance(options.views, str):
        options = ReadOptions(**(vars(options) | {"views": (options.views,)}))
    path = Path(path).expanduser().resolve()
    return find_source(path).read(path, options)


def recorded_options(trained_on: Mapping[str, Any], labels: Sequence[str]) -> ReadOptions:
    """The options a run's data summary (config.json or its checkpoint) recorded, with the
    checkpoint's `labels`: what reopens the very split the run trained on."""
    split = trained_on.get("split") if isinstance(trained_on.get("split"), Mapping) else {}
    options: dict[str, Any] = {"labels": tuple(labels)}
    if trained_on.get("views"):
        options["views"] = tuple(trained_on["views"])
    for key, old_key in (("val_fraction", "val_fraction"), ("seed", "split_seed")):
        value = split.get(key, trained_on.get(old_key))
        if value is not None:
            options[key] = type(getattr(ReadOptions, key))(value)
    if split.get("test_fraction") is not None:
        options["test_fraction"] = float(split["test_fraction"])
    if trained_on.get("uncertain"):
        options["uncertain"] = str(trained_on["uncertain"])
    return ReadOptions(**options)


def findings_lines(index: DatasetIndex) -> list[str]:
    """The reader's findings as lines (`cxr-attention data` and the run print them)."""
    return [finding.line() for finding in index.findings]


__all__ = [
    "SOURCES",
    "DatasetIndex",
    "Finding",
    "ReadOptions",
    "Source",
    "find_source",
    "findings_lines",
    "open_dataset",
    "recorded_options",
]
