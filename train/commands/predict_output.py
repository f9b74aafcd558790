"""`predict`'s outputs: the table (streamed), the JSON list (printed at the end), the CSV rows and
the map files of `--save-maps`.

The formats are documented in `train/commands/predict.py`; an image a model flags as unlike its
training films is marked in the table with `OOD_MARK`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from cxr_attention.core.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from cxr_attention.core.inference import ScoredBatch, ScoringModel

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
        from cxr_attention.core.inference import positive_labels

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
                "attention_kind": m.checkpoint.config.kind,
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


def save_maps(
    folder: Path,
    batch: ScoredBatch,
    models: list[ScoringModel],
    methods: dict[str, list[str]],
    asked: tuple[str, ...],
    thresholds: dict[str, dict[str, float]],
    stems: dict[str, str],
    device: torch.device | str,
) -> None:
    """Write each image's model view(s) and its overlays (names in train/commands/predict.py):
    per label for Grad-CAM and class-specific attention, per gate for a gate's attention."""
    from cxr_attention.core.inference import explanation_maps

    inputs = {(m.image_size, m.checkpoint.config.lung_prior): m for m in models}
    for image in batch.images:
        stem = stems[image.source]
        for (size, prior), m in inputs.items():
            suffix = (
                "" if len(inputs) == 1 else f"_{size}px" + (f"_{prior}" if prior != "none" else "")
            )
            write_png(folder / f"{stem}_input{suffix}.png", image.view_for(m.checkpoint.config))
    for m in models:
        views = np.stack([image.view_for(m.checkpoint.config) for image in batch.images])
        prefixes = [
            f"{stems[image.source]}{f'_{m.tag}' if len(models) > 1 else ''}"
            for image in batch.images
        ]
        wanted = [
            labels_to_map(batch.probabilities[m.tag][i], m, asked, thresholds[m.tag])
            for i in range(len(batch.images))
        ]
        indices = sorted({m.labels.index(label) for labels in wanted for label in labels})
        for method in methods[m.tag]:
            if method == "attention" and not m.checkpoint.model.class_specific:
                for gate, maps in gate_maps(m, views, device).items():
                    for i, prefix in enumerate(prefixes):
                        _write_overlay(folder / f"{prefix}_attention_{gate}.png", views[i], maps[i])
                continue
            maps = explanation_maps(m, views, indices, method, device)
            for i, prefix in enumerate(prefixes):
                for label in wanted[i]:
                    heat = maps[i, indices.index(m.labels.index(label))]
                    _write_overlay(folder / f"{prefix}_{method}_{label}.png", views[i], heat)


def gate_maps(
    m: ScoringModel, views: np.ndarray, device: torch.device | str
) -> dict[str, np.ndarray]:
    """Each attention gate's map of a uint8 batch of views: {gate: float32 (B, S, S) in [0, 1]},
    upsampled from the gate's own grid, values as the gate computed them."""
    import torch

    from cxr_attention.core.data.preprocess import config_input
    from cxr_attention.core.explain import explain

    model = m.checkpoint.model
    x = config_input(torch.from_numpy(np.ascontiguousarray(views)), m.checkpoint.config, device)
    return {
        gate: explain(model, x, [0], "attention", stage=gate).maps[:, 0].cpu().numpy()
        for gate in model.gate_names
    }


def labels_to_map(
    p: np.ndarray, m: ScoringModel, asked: tuple[str, ...], thresholds: dict[str, float]
) -> list[str]:
    """The labels mapped for one image: those asked for, else its positive findings (at or over
    threshold), else its most probable one."""
    from cxr_attention.core.inference import positive_labels

    if asked:
        return list(asked)
    return positive_labels(p, m.labels, thresholds) or [m.labels[int(np.argmax(p))]]


def _write_overlay(path: Path, view: np.ndarray, heat: np.ndarray) -> None:
    import cv2

    from cxr_attention.core.explain.overlay import overlay

    rgb = overlay(view, heat, opacity=0.4, vmin=0.0, vmax=1.0)
    write_png(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        raise ConfigError(f"cannot write {path}: check that the folder is writable")
