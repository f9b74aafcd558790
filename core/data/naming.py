"""Patients read from film names, where a collection's names carry them.

A split by film leaks a chest into both training and test when a patient has several films, so
every source splits by patient wherever one can be read:

- Kermany et al.'s paediatric set ("Chest X-Ray Images (Pneumonia)"): `person<id>_bacteria_<n>` and
  `person<id>_virus_<n>`; normal films `IM-<id>-<n>` and `NORMAL2-IM-<id>-<n>` (a second series
  with its own numbering, so IM-0383 and NORMAL2-IM-0383 are two patients);
- CheXpert-style paths: `.../patient<id>/study<k>/view<j>.jpg`.

A film whose name matches none of these is its own patient.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from cxr_attention.core.data.index import Finding


@dataclass(frozen=True)
class NamingRule:
    """A way of reading a patient from a film's path relative to the dataset root."""

    name: str
    pattern: re.Pattern[str]
    prefix: str  # the patient's name is prefix + the number, without leading zeros

    def patient(self, relative: str) -> str | None:
        match = self.pattern.search(relative)
        return None if match is None else f"{self.prefix}{int(match.group(1))}"


RULES: tuple[NamingRule, ...] = (
    NamingRule("Kermany person<id>_", re.compile(r"(?:^|/)person(\d+)_[^/]*$"), "person"),
    NamingRule("Kermany NORMAL2-IM-<id>-", re.compile(r"(?:^|/)NORMAL2-IM-(\d+)-[^/]*$"), "N2-IM-"),
    NamingRule("Kermany IM-<id>-", re.compile(r"(?:^|/)IM-(\d+)-[^/]*$"), "IM-"),
    NamingRule("CheXpert patient<id>/", re.compile(r"(?:^|/)patient(\d+)/"), "patient"),
)
ONE_FILM = "one film, one patient"


def read_patients(relatives: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """The patient of each film (`relatives`: paths relative to the root, with `/`), and how many
    films each rule read ({rule name: films}; ONE_FILM for films no rule reads)."""
    patients, counts = [], defaultdict(int)
    for relative in relatives:
        for rule in RULES:
            patient = rule.patient(relative)
            if patient is not None:
                counts[rule.name] += 1
                break
        else:
            patient = f"film:{relative}"
            counts[ONE_FILM] += 1
        patients.append(patient)
    return patients, dict(counts)


_KERMANY_FILM = re.compile(r"(?:^|/)person(\d+)_(bacteria|virus)_(\d+)(?:_\d+)?\.[^/]*$")


def kermany_counter_gaps(relatives: Sequence[str]) -> list[Finding]:
    """What Kermany's names say about films that are not here.

    Each kind (bacteria, virus) numbers its films with one running counter that rises with the
    patient number. A counter value missing inside one patient's own run of films (person5 has
    bacteria_17 and bacteria_19) is a film of that patient taken out of this folder; a run of
    missing values below a kind's first film belongs to patients with smaller numbers. Where
    Kaggle's test/ holds such films, those patients are in two splits.
    """
    films: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for relative in relatives:
        match = _KERMANY_FILM.search(relative)
        if match:
            films[match.group(2)].append((int(match.group(3)), int(match.group(1))))
    patients = {p for rows in films.values() for _, p in rows}
    findings = []
    for kind, rows in sorted(films.items()):
        rows.sort()
        inside = [
            f"person{p1}_{kind}_{c1 + 1}"
            for (c1, p1), (c2, p2) in zip(rows, rows[1:], strict=False)
            if p1 == p2 and c2 > c1 + 1
        ]
        n_inside = sum(
            c2 - c1 - 1
            for (c1, p1), (c2, p2) in zip(rows, rows[1:], strict=False)
            if p1 == p2 and c2 > c1 + 1
        )
        first_counter, first_patient = rows[0]
        earlier = sum(1 for p in patients if p < first_patient)
        message = (
            f"{kind}: counter values missing inside one patient's own run of films: "
            f"{n_inside:,} (films of patients who are here)"
        )
        if first_counter > 1:
            message += (
                f"; {kind}_1 to {kind}_{first_counter - 1} are all absent, and belong to patients "
                f"numbered below person{first_patient}, {earlier:,} of whom have other films here: "
                "where Kaggle's test/ holds them, its split is not by patient"
            )
        findings.append(
            Finding(
                kind=f"kermany_{kind}_counter_gaps",
                count=n_inside,
                message=message,
                examples=tuple(inside[:3]),
            )
        )
    return findings


def collection_title(relatives: Sequence[str]) -> str:
    """What the films are, in words every page can show, when their names say it; else "".

    Kermany's names (`person<id>_...`, `IM-<id>-`, `NORMAL2-IM-<id>-`) on nine films in ten or more:
    "5,216 paediatric films from one centre in Guangzhou (Kermany et al. 2018)" for its training part.
    """
    _, counts = read_patients(relatives)
    kermany = sum(n for rule, n in counts.items() if rule.startswith("Kermany"))
    if relatives and kermany >= 0.9 * len(relatives):
        return f"{len(relatives):,} paediatric films from one centre in Guangzhou (Kermany et al. 2018)"
    return ""
