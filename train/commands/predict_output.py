"""`predict`'s outputs: the table (streamed), the JSON list (printed at the end) and the CSV rows.

The formats are documented in `train/commands/predict.py`; an image a model flags as unlike its
training films is marked in the table with `OOD_MARK`.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

if TYPE_CHECKING:
    from core.inference import ScoredBatch, ScoringModel

OOD_MARK = "[UNLIKE TRAINING FILMS: output unreliable]"


class Output:
    """Table (streamed), JSON (printed at the end) and CSV (streamed) for scored batches."""

    def __init__(self, args, models, thresholds, asked, width: int, csv_file: TextIO | None):
        self.args, self.models, self.thresholds, self.asked = args, models, thresholds, asked
        self.width = max(width, 5)
        self.records: list[dict[str, Any]] = []
        self.csv_writer = None
        if csv_file is not None:
            self.csv_writer = csv.writer(csv_file)
            self.csv_writer.writerow(self._csv_header())
        if not args.json:
            model_col = f"{'model':<16} " if len(models) > 1 else ""
            what = "labels asked for" if asked else "top findings"
            calibrated = all(m.checkpoint.calibrated for m in models)
            kind = "calibrated probabilities" if calibrated else "probabilities"
            print(f"{'image':<{self.width}} {model_col}{what} ({kind}; * = at or over threshold)")

    def add(self, batch: ScoredBatch) -> None:
        from core.inference import positive_labels

        for i, image in enumerate(batch.images):
            per_model = {}
            for m in self.models:
                p = batch.probabilities[m.tag][i]
                verdicts = batch.ood.get(m.tag)
                verdict = verdicts[i] if verdicts is not None else None
                per_model[m.tag] = (
                    p,
                    positive_labels(p, m.labels, self.thresholds[m.tag]),
                    verdict,
                )
            if self.args.json:
                self.records.append(self._record(image.source, per_model))
            else:
                self._print_rows(image.source, per_model)
            if self.csv_writer is not None:
                row: list[Any] = [image.source]
                for m in self.models:
                    p, positive, verdict = per_model[m.tag]
                    row += [f"{float(v):.6f}" for v in p] + [";".join(positive)]
                    row += (
                        ["", ""]
                        if verdict is None
                        else [
                            f"{verdict.score:.4f}",
                            int(verdict.flagged),
                        ]
                    )
                self.csv_writer.writerow(row)

    def _record(self, source: str, per_model: dict) -> dict[str, Any]:
        def block(m: ScoringModel) -> dict[str, Any]:
            p, positive, verdict = per_model[m.tag]
            return {
                "probabilities": {
                    label: round(float(v), 6) for label, v in zip(m.labels, p, strict=True)
                },
                "calibrated": m.checkpoint.calibrated,
                "positive": positive,
                "out_of_distribution": None if verdict is None else verdict.as_dict(),
            }

        record = {"image": source, **block(self.models[0])}
        if len(self.models) > 1:
            record["models"] = {
                m.tag: {"checkpoint": str(m.checkpoint.path), **block(m)} for m in self.models
            }
        return record

    def _print_rows(self, source: str, per_model: dict) -> None:
        name = source if len(source) <= self.width else "..." + source[-(self.width - 3) :]
        for j, m in enumerate(self.models):
            p, positive, verdict = per_model[m.tag]
            if self.asked:
                shown = [m.labels.index(label) for label in self.asked]
            else:
                shown = list(np.argsort(-p, kind="stable")[: max(1, self.args.top)])
            cells = [
                f"{m.labels[k]} {p[k]:.3f}{'*' if m.labels[k] in positive else ''}" for k in shown
            ]
            model_col = f"{m.tag[:16]:<16} " if len(self.models) > 1 else ""
            first = name if j == 0 else ""
            flag = f"  {OOD_MARK}" if verdict is not None and verdict.flagged else ""
            print(f"{first:<{self.width}} {model_col}{', '.join(cells)}{flag}", flush=False)

    def _csv_header(self) -> list[str]:
        header = ["image"]
        for m in self.models:
            prefix = f"{m.tag}:" if len(self.models) > 1 else ""
            header += [f"{prefix}{label}" for label in m.labels]
            header += [
                f"{prefix}{name}" for name in ("positive", "ood_score", "out_of_distribution")
            ]
        return header

    def close(self) -> None:
        if self.args.json:
            json.dump(self.records, sys.stdout, indent=2)
            sys.stdout.write("\n")
        sys.stdout.flush()
