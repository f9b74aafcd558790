"""localization.json (written by `cxr-attention localize`) as chart series and tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

# metric key -> (title, how to read it from a per-class or overall entry)
METRICS: dict[str, str] = {
    "pointing_game": "Pointing game (map maximum inside a box)",
    "iobb_0.1": "IoBB accuracy at T = 0.1",
    "iobb_0.25": "IoBB accuracy at T = 0.25",
    "iobb_0.5": "IoBB accuracy at T = 0.5",
    "energy_in_box": "Energy inside the box",
}


def metric_value(stats: Mapping[str, Any], metric: str) -> float:
    """One metric of a per-class or overall entry; NaN when absent or null."""
    if metric.startswith("iobb_"):
        value = (stats.get("iobb_acc") or {}).get(metric.split("_", 1)[1])
    else:
        value = stats.get(metric)
    return float(value) if isinstance(value, int | float) else math.nan


def per_class_series(
    results: Sequence[tuple[str, Mapping[str, Any]]], metric: str
) -> tuple[list[str], dict[str, list[float]]]:
    """Labels with boxes in any run, and for each run its metric per label (NaN when none)."""
    labels: list[str] = []
    for _, loc in results:
        labels += [label for label in (loc.get("per_class") or {}) if label not in labels]
    series = {
        name: [
            metric_value((loc.get("per_class") or {}).get(label, {}), metric) for label in labels
        ]
        for name, loc in results
    }
    return labels, series


def overall_frame(
    results: Sequence[tuple[str, Mapping[str, Any]]], kinds: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per run: its attention kind (`kinds`, by run name), method, map stage, boxes,
    images, and every overall metric."""
    rows = []
    for name, loc in results:
        overall = loc.get("overall") or {}
        row = {
            "run": name,
            "attention": (kinds or {}).get(name, ""),
            "method": loc.get("method", ""),
            "map stage": loc.get("map_stage", ""),
            "split": loc.get("split", ""),
            "boxes": loc.get("n_boxes", 0),
            "images": loc.get("n_images", 0),
        }
        row |= {key: round(metric_value(overall, key), 3) for key in METRICS}
        rows.append(row)
    return pd.DataFrame(rows)
