"""From the films a source found to a `DatasetIndex`, by the rules every collection shares.

- Byte-identical files: one copy is kept (the one in test when copies sit in two splits); when the
  copies carry different labels (a film in two classes), all are left out, since neither label
  can be trusted.
- Patients: read from names where a rule knows them (`core.data.naming`), else one film is one
  patient. A patient with films in train and in test (as a collection's own split may have it)
  keeps the test films; the training films are left out, so test stays unseen.
- Splits: a test split the collection gives (folders, a column) is kept; without one, a seeded
  split by patient carves `test_fraction` of the films. A validation folder or column joins
  training, and validation is always carved by patient from training, with the seed recorded.

Every decision is a `Finding` with counts and examples, for `cxr-attention data` and the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxr_attention.core.data import splits as splitting
from cxr_attention.core.data.index import (
    DatasetIndex,
    Finding,
    build_items,
    empty_boxes,
    files_fingerprint,
    patient_numbers,
)
from cxr_attention.core.data.naming import ONE_FILM, read_patients
from cxr_attention.core.data.scan import identical_groups
from cxr_attention.core.errors import DatasetError
from cxr_attention.core.labels import choose_labels

TRAIN, TEST = "train", "test"


@dataclass
class Films:
    """The films a source found, one entry per film in every list, in a stable order.

    `given_split` is "train" or "test" where the collection says so, "" where it does not (a
    validation folder or column counts as "train": validation is carved from it). `targets` has
    one 0/1 column per label the collection names (`labels`, in order).
    """

    root: Path
    relatives: list[str]  # path relative to root with "/" (the image id)
    sizes: list[int]  # byte sizes
    given_split: list[str]
    targets: pd.DataFrame
    labels: tuple[str, ...]
    age: np.ndarray | None = None
    sex: np.ndarray | None = None
    view: np.ndarray | None = None
    title: str = ""  # what the films are in words (`DatasetIndex.title`), when the source knows
    patients: list[str] | None = None  # from a column; None: read from the names
    findings: list[Finding] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.relatives)

    def keep(self, mask: np.ndarray) -> None:
        """Keep the films where `mask` is True."""
        pick = np.flatnonzero(mask)
        self.relatives = [self.relatives[i] for i in pick]
        self.sizes = [self.sizes[i] for i in pick]
        self.given_split = [self.given_split[i] for i in pick]
        self.targets = self.targets.iloc[pick].reset_index(drop=True)
        for name in ("age", "sex", "view"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value)[pick])
        if self.patients is not None:
            self.patients = [self.patients[i] for i in pick]


@dataclass(frozen=True)
class SplitOptions:
    """How to split where the collection does not say (recorded in the run)."""

    val_fraction: float = 0.1  # of the training films' patients, for validation
    test_fraction: float = 0.2  # of all films' patients, when no test split is given
    seed: int = 0


def assemble(
    films: Films,
    *,
    source: str,
    where: str,
    labels: str | Sequence[str],
    options: SplitOptions,
    views: Sequence[str] = (),
    extra_files: Sequence[Path] = (),
    uncertain: str = "zeros",
    cache_name: str = "",
) -> DatasetIndex:
    """The index of `films` (see the module's rules); `where` names the collection in messages."""
    if len(films) == 0:
        raise DatasetError(f"{where} holds no films (PNG, JPEG or DICOM)")
    fingerprint = files_fingerprint(zip(films.relatives, films.sizes, strict=True), extra_files)
    _drop_identical(films)
    if films.patients is None:
        films.patients, rules = read_patients(films.relatives)
        films.findings.append(_patients_finding(rules, len(films.patients)))
    _drop_train_films_of_test_patients(films)
    patient_ids = patient_numbers(films.patients)
    split, method = _split(films, patient_ids, options)
    chosen = choose_labels(labels, films.labels, where)
    items = build_items(
        films.relatives,
        [str(films.root / relative) for relative in films.relatives],
        patient_ids,
        split,
        films.targets,
        chosen,
        age=films.age,
        sex=films.sex,
        view=films.view,
    )
    if views:
        known = items["view"].astype(str) != ""
        outside = known & ~items["view"].isin(list(views))
        if outside.any():
            films.findings.append(
                Finding(
                    "other_views",
                    int(outside.sum()),
                    f"{int(outside.sum()):,} films of views other than {'/'.join(views)}",
                    tuple(items.loc[outside, "image_id"].head(3)),
                    "left out (choose views to keep them)",
                )
            )
            items = items[~outside].reset_index(drop=True)
    splitting.check_patient_disjoint(items["patient_id"].to_numpy(), items["split"].to_numpy())
    return DatasetIndex(
        root=films.root,
        labels=chosen,
        source=source,
        fingerprint=fingerprint,
        files_fingerprint=fingerprint,
        items=items,
        boxes=empty_boxes(),
        label_set=labels if isinstance(labels, str) else ",".join(labels),
        split_method=method,
        seed=options.seed,
        val_fraction=options.val_fraction,
        views=tuple(views),
        uncertain=uncertain,
        findings=films.findings,
        cache_name=cache_name,
        title=films.title,
    )


def _drop_identical(films: Films) -> None:
    paths = [films.root / relative for relative in films.relatives]
    groups = identical_groups(paths, dict(zip(paths, films.sizes, strict=True)))
    if not groups:
        return
    position = {path: i for i, path in enumerate(paths)}
    rows = films.targets.to_numpy()
    drop = np.zeros(len(films), dtype=bool)
    conflicting, crossing, plain = [], [], []
    for group in groups:
        members = [position[path] for path in group]
        names = " = ".join(films.relatives[i] for i in members)
        if len({tuple(rows[i]) for i in members}) > 1:
            drop[members] = True
            conflicting.append(names)
            continue
        in_test = [i for i in members if films.given_split[i] == TEST]
        keep = (in_test or members)[0]
        drop[[i for i in members if i != keep]] = True
        (crossing if in_test and len(in_test) < len(members) else plain).append(names)
    n_groups = len(groups)
    films.findings.append(
        Finding(
            "identical_files",
            n_groups,
            f"{n_groups} groups of byte-identical files ({sum(map(len, groups))} files)",
            tuple(" = ".join(p.relative_to(films.root).as_posix() for p in g) for g in groups),
            f"one file of each kept, {int(drop.sum())} left out",
        )
    )
    if crossing:
        films.findings.append(
            Finding(
                "identical_files_in_two_splits",
                len(crossing),
                f"{len(crossing)} of them sit in train and in test",
                tuple(crossing),
                "the test copy kept",
            )
        )
    if conflicting:
        films.findings.append(
            Finding(
                "identical_files_with_two_labels",
                len(conflicting),
                f"{len(conflicting)} of them carry different labels (a film in two classes)",
                tuple(conflicting),
                "every copy left out: neither label can be trusted",
            )
        )
    films.keep(~drop)


def _patients_finding(rules: dict[str, int], n: int) -> Finding:
    read = {rule: count for rule, count in rules.items() if rule != ONE_FILM}
    alone = rules.get(ONE_FILM, 0)
    if not read:
        return Finding(
            "patients",
            0,
            f"no patient can be read from the names of these {n:,} films",
            action="each film is its own patient: a patient with several films may sit in two "
            "splits",
        )
    parts = ", ".join(f"{count:,} by {rule}" for rule, count in sorted(read.items()))
    extra = f"; {alone:,} films are each their own patient" if alone else ""
    return Finding("patients", n - alone, f"patients read from names: {parts}{extra}")


def _drop_train_films_of_test_patients(films: Films) -> None:
    split = np.asarray(films.given_split, dtype=object)
    patients = np.asarray(films.patients, dtype=object)
    if not (split == TEST).any():
        return
    tested = set(patients[split == TEST].tolist())
    crossing = (split != TEST) & np.isin(patients, list(tested))
    if not crossing.any():
        films.findings.append(
            Finding("patients_in_two_splits", 0, "no patient has films in train and in test")
        )
        return
    names = sorted(set(patients[crossing].tolist()))
    films.findings.append(
        Finding(
            "patients_in_two_splits",
            len(names),
            f"{len(names):,} patients have films in train and in test ({int(crossing.sum()):,} "
            "training films): the collection's own split is not by patient",
            tuple(names[:3]),
            "their training films left out, so test stays unseen",
        )
    )
    films.keep(~crossing)


def _split(films: Films, patient_ids: np.ndarray, options: SplitOptions) -> tuple[np.ndarray, str]:
    given = np.asarray(films.given_split, dtype=object)
    rng = np.random.default_rng(options.seed)
    if (given == TEST).any():
        split = np.where(given == TEST, TEST, TRAIN).astype(object)
        method = "given"
    else:
        split = np.full(len(given), TRAIN, dtype=object)
        test = splitting.carve_patients(patient_ids, options.test_fraction, rng)
        split[np.isin(patient_ids, list(test))] = TEST
        method = "patient"
    training = split == TRAIN
    val = splitting.carve_patients(patient_ids[training], options.val_fraction, rng)
    split[training & np.isin(patient_ids, list(val))] = "val"
    return split, method
