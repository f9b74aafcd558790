"""The localization table of `cxr-attention compare`: our runs, the random control, Wang et al.

`localization_table(runs)` reads each run's localization.json (and localization_random.json, the
random control scored on the same boxes) and returns flat rows, one per (entry, metric):

    {"name": str, "kind": "run" | "control" | "published", "method": str, "source": str,
     "split": str, "map_stage": str, "n_boxes": int | None,
     "metric": "pointing_game" | "iobb@0.1" | "iobb@0.25" | "iobb@0.5" | "energy_in_box",
     "overall": float | None, <label>: float | None, ...}

Wang et al.'s published row only has the three IoBB metrics. `table_labels(rows)` gives the label
columns present, in the ChestX-ray14 order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cxr_attention.core.explain.localize_run import CONTROL_FILE
from cxr_attention.core.explain.reference import WANG2017_IOBB_ACC, WANG2017_NAME
from cxr_attention.core.labels import ALL14
from cxr_attention.core.runs import LOCALIZATION, RunFolder

METRICS: tuple[str, ...] = ("pointing_game", "iobb@0.1", "iobb@0.25", "iobb@0.5", "energy_in_box")
_FIXED = ("name", "kind", "method", "source", "split", "map_stage", "n_boxes", "metric", "overall")


def _metric_value(entry: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("iobb@"):
        return (entry.get("iobb_acc") or {}).get(metric.removeprefix("iobb@"))
    return entry.get(metric)


def report_rows(report: dict[str, Any], name: str, kind: str) -> list[dict[str, Any]]:
    """Rows of one localization.json dict."""
    rows = []
    for metric in METRICS:
        row: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "method": report.get("method"),
            "source": report.get("source"),
            "split": report.get("split"),
            "map_stage": report.get("map_stage"),
            "n_boxes": report.get("n_boxes"),
            "metric": metric,
            "overall": _metric_value(report.get("overall") or {}, metric),
        }
        for label, entry in (report.get("per_class") or {}).items():
            row[label] = _metric_value(entry, metric)
        rows.append(row)
    return rows


def published_rows() -> list[dict[str, Any]]:
    """Wang et al. 2017, Table 4, as rows (ChestX-ray14, 984 boxes)."""
    return [
        {
            "name": WANG2017_NAME,
            "kind": "published",
            "method": "heatmap (Wang et al.)",
            "source": "chestxray14",
            "split": "test",
            "map_stage": "",
            "n_boxes": 984,
            "metric": f"iobb@{t}",
            "overall": None,
            **accuracy,
        }
        for t, accuracy in WANG2017_IOBB_ACC.items()
    ]


def localization_table(
    runs: Sequence[RunFolder | str | Path], published: bool = True
) -> list[dict[str, Any]]:
    """Rows for every run that has localization.json, its random control, and Wang et al.'s row.

    Runs without localization.json are skipped (run `cxr-attention localize RUN` first).
    """
    rows: list[dict[str, Any]] = []
    for run in runs:
        folder = run if isinstance(run, RunFolder) else RunFolder(Path(run))
        if not folder.has(LOCALIZATION):
            continue
        report = folder.localization()
        kind = "control" if report.get("method") == "random" else "run"
        rows += report_rows(report, folder.name, kind)
        if folder.has(CONTROL_FILE):
            control = folder.read_json(CONTROL_FILE, "localize")
            rows += report_rows(control, f"random control ({folder.name})", "control")
    if published:
        rows += published_rows()
    return rows


def table_labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The label columns present in `rows`, in the ChestX-ray14 order."""
    present = {key for row in rows for key in row if key not in _FIXED}
    return [label for label in ALL14 if label in present]
