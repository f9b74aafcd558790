"""Localization tables for the report: our maps, the random control, Wang et al. 2017.

The rows come from `core.explain.table.localization_table` (which reads each run's
localization.json and localization_random.json); here they become one table per measure, the
layout of Wang et al.'s Table 4.
"""

from __future__ import annotations

from collections.abc import Sequence

from cxr_attention.core.explain.table import METRICS, localization_table, table_labels
from cxr_attention.core.report.results import RunResult
from cxr_attention.core.report.tables import Table

TITLES = {
    "pointing_game": "Pointing game (map maximum inside the truth)",
    "iobb@0.1": "Localization accuracy at IoBB > 0.1",
    "iobb@0.25": "Localization accuracy at IoBB > 0.25",
    "iobb@0.5": "Localization accuracy at IoBB > 0.5",
    "energy_in_box": "Energy in box (share of the map's mass inside the truth)",
}


def localization_tables(results: Sequence[RunResult]) -> list[Table]:
    """One table per localization measure; empty when no run has localization.json."""
    with_maps = [r for r in results if r.localization is not None]
    if not with_maps:
        return []
    rows = localization_table([r.folder for r in with_maps], published=True)
    names = {r.folder.name: r.name for r in with_maps}
    tables = []
    for metric in METRICS:
        # columns: the findings that have a value in this measure (Wang et al. give IoBB only)
        of_metric = [row for row in rows if row["metric"] == metric]
        labels = [
            label
            for label in table_labels(of_metric)
            if any(row.get(label) is not None for row in of_metric)
        ]
        table = Table(
            f"localization_{metric.replace('@', '_')}",
            TITLES.get(metric, metric),
            ["maps", "method", "map stage", "truth units", "overall", *labels],
        )
        for row in of_metric:
            name = names.get(row["name"], row["name"])
            table.rows.append(
                [
                    name,
                    row.get("method"),
                    row.get("map_stage") or "",
                    row.get("n_boxes"),
                    _num(row.get("overall")),
                    *[_num(row.get(label)) for label in labels],
                ]
            )
        table.note = (
            "Truth units are boxes (ChestX-ray14) or lesion masks (phantom). The random control "
            "scores random maps on the same truth; Wang et al. 2017 (Table 4) is ChestX-ray14's "
            "984 boxes with their own heatmaps."
            if metric.startswith("iobb")
            else "The random control scores random maps on the same truth."
        )
        tables.append(table)
    return tables


def _num(value) -> float:
    return float("nan") if value is None else float(value)
