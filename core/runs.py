"""A run folder, as `fit`, `evaluate` and `localize` write it and the app and `compare` read it.

    RUN/checkpoint.pt      best model (by validation macro AUC); last.pt beside it for resume
    RUN/config.json        the resolved configuration, data fingerprint, seed, world size, version
    RUN/history.csv        one row per epoch
    RUN/predictions.csv    (evaluate) ids, metadata, y_true_<label>..., y_score_<label>...
    RUN/metrics.json       (evaluate)
    RUN/localization.json  (localize)

Nothing else couples training to its readers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cxr_attention.core.errors import RunError

CHECKPOINT = "checkpoint.pt"
LAST_CHECKPOINT = "last.pt"
CONFIG = "config.json"
HISTORY = "history.csv"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"
LOCALIZATION = "localization.json"


@dataclass(frozen=True)
class RunFolder:
    """Paths and readers for one run folder."""

    path: Path

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"run folder not found: {path}")
        return cls(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def last_checkpoint(self) -> Path:
        return self.path / LAST_CHECKPOINT

    def has(self, filename: str) -> bool:
        return (self.path / filename).is_file()

    def _need(self, filename: str, made_by: str) -> Path:
        target = self.path / filename
        if not target.is_file():
            raise RunError(f"{target} is missing: run `cxr-attention {made_by} {self.path}` first")
        return target

    def read_json(self, filename: str, made_by: str) -> dict[str, Any]:
        target = self._need(filename, made_by)
        try:
            return json.loads(target.read_text())
        except json.JSONDecodeError as exc:
            raise RunError(f"{target} is not valid JSON ({exc.msg} at line {exc.lineno})") from None

    def config(self) -> dict[str, Any]:
        return self.read_json(CONFIG, "fit --out")

    def metrics(self) -> dict[str, Any]:
        return self.read_json(METRICS, "evaluate")

    def localization(self) -> dict[str, Any]:
        return self.read_json(LOCALIZATION, "localize")

    def predictions(self) -> pd.DataFrame:
        return pd.read_csv(self._need(PREDICTIONS, "evaluate"))

    def history(self) -> pd.DataFrame:
        return pd.read_csv(self._need(HISTORY, "fit --out"))


def find_runs(root: str | Path) -> list[RunFolder]:
    """Every run folder (a folder holding checkpoint.pt) under `root`, sorted by path.

    Symbolic links to folders are followed (people keep runs on a data disk and link them into a
    runs folder; `Path.rglob` skips links on Python 3.11). A folder reached twice, through a link
    or a link cycle, is listed and descended into once, under the path reached first.
    """
    root = Path(root)
    if not root.exists():
        return []
    if (root / CHECKPOINT).is_file():
        return [RunFolder(root)]
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders.sort()  # walk order decides which of two paths to one folder is kept
        try:
            info = os.stat(folder)
        except OSError:
            subfolders.clear()
            continue
        if (info.st_dev, info.st_ino) in seen:
            subfolders.clear()
            continue
        seen.add((info.st_dev, info.st_ino))
        if CHECKPOINT in files:
            found.append(Path(folder))
    return [RunFolder(p) for p in sorted(found)]


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically, NaN written as null (strict JSON readers reject NaN)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_nan_to_none(data), indent=2) + "\n")
    tmp.replace(path)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value
