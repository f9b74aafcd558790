"""Self-describing checkpoints: one `torch.save` file of plain data, loaded with `weights_only=True`.

Schema (format_version 1)::

    {
      "format": "cxr-attention-checkpoint",
      "format_version": 1,
      "model": ModelConfig as a dict (backbone, labels in order, attention and where, image size,
               normalisation, input channels),
      "state_dict": {name: tensor},
      "training": {"epochs": int, "best_epoch": int, "best_val_macro_auc": float,
                   "data": {"source": "phantom" | "chestxray14", "fingerprint": str, ...},
                   "pretrained": None | str, "thresholds": {label: {"youden": p, "f1": p}},
                   "map_equivariance": float (0: off), "lung_weight": float (0: off; the
                   weight of the training term that keeps the model's maps inside the lung
                   fields, `core.training.lung_term`), ...},
      "created": ISO 8601 time, "package_version": str,
      "ood": optional, the out-of-distribution description (`core.trust.ood.OodDetector.to_dict`:
             per-layer Gaussians of the training films' pooled features, threshold from validation),
      "calibration": optional, {"method": "temperature", "temperature": {label: T},
             "fitted_on": "val", validation NLL/Brier/ECE before and after},
      "quantized": optional, {tensor name: per-output-channel scales} of int8 weights in a compact
                   checkpoint (`core.models.compact`; the demo zoo ships that way),
    }

The two optional sections are written at the end of `fit`; a checkpoint without them (any written
before they existed) loads as before, with raw sigmoid probabilities and no OOD score.
Every problem is a `CheckpointError` naming what differs; nothing loads partially.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from cxr_attention import core
from cxr_attention.core.errors import CheckpointError, ConfigError
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.models.compact import QUANTIZED, expand_weights
from cxr_attention.core.trust.features import FINAL, INPUT, LAYOUT_CELLS
from cxr_attention.core.trust.ood import OodDetector
from cxr_attention.core.trust.temperature import TemperatureScaling

FORMAT = "cxr-attention-checkpoint"
FORMAT_VERSION = 1
# Every checkpoint format of the project, so that a file given in the wrong place says what it is.
KNOWN_FORMATS = {FORMAT: "classifier checkpoint", "cxr-attention-lungs": "lung-field model"}


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode) and its metadata."""

    model: AttentionClassifier
    config: ModelConfig
    training: dict[str, Any]
    created: str
    package_version: str
    path: Path | None = None
    ood: OodDetector | None = None  # None: a checkpoint without an OOD description
    calibration: TemperatureScaling | None = None  # None: probabilities are the raw sigmoid

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities (B, L) float32 from raw logits (B, L): sigmoid(logit / T) with the
        validation temperatures when the checkpoint has them, the raw sigmoid otherwise."""
        logits = logits.float()
        if self.calibration is not None:
            logits = self.calibration.scale(logits)
        return torch.sigmoid(logits)

    @cached_property
    def lung_weight(self) -> float:
        """Weight of the lung term the model trained with (0: none): `recorded_lung_weight`, read
        once (an older checkpoint's run folder is read on first use, not on every map drawn)."""
        return recorded_lung_weight(self.training, self.path)

    @property
    def thresholds(self) -> dict[str, float]:
        """Per-label operating thresholds chosen on validation (Youden's J), 0.5 when absent."""
        return self.validation_thresholds("youden")

    def validation_thresholds(self, rule: str) -> dict[str, float]:
        """Per-label thresholds chosen on validation by `rule` ("youden" or "f1"); 0.5 when absent."""
        chosen = self.training.get("thresholds") or {}
        return {label: float((chosen.get(label) or {}).get(rule, 0.5)) for label in self.labels}


def recorded_lung_weight(training: dict[str, Any], path: Path | None) -> float:
    """Weight of the lung term a checkpoint's model trained with (0: none), the term that holds
    its gates, class maps and (for a linear head) final-stage Grad-CAM inside the lung fields.

    Checkpoints written before it was recorded (up to 2026-12-07) take it from their run folder's
    config.json, which `fit` writes beside checkpoint.pt; 0 where neither says.
    """
    if "lung_weight" in training:
        return float(training["lung_weight"] or 0.0)
    record = Path(path).parent / "config.json" if path is not None else None
    if record is None or not record.is_file():
        return 0.0
    try:
        fit = json.loads(record.read_text()).get("fit") or {}
    except (OSError, ValueError, AttributeError):
        return 0.0
    return float(fit.get("lung_weight") or 0.0)


def checkpoint_payload(
    model: AttentionClassifier,
    training: dict[str, Any] | None = None,
    *,
    ood: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The plain-data dict that `save_checkpoint` writes (`ood` and `calibration` when given)."""
    optional = {"ood": ood, "calibration": calibration}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "training": dict(training or {}),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "package_version": core.__version__,
        **{key: value for key, value in optional.items() if value is not None},
    }


def save_checkpoint(
    path: str | Path,
    model: AttentionClassifier,
    training: dict[str, Any] | None = None,
    *,
    ood: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (a killed job never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(checkpoint_payload(model, training, ood=ood, calibration=calibration), tmp)
    tmp.replace(path)
    return path


def read_checkpoint_data(
    path: str | Path, expected_format: str = FORMAT, what: str = "cxr-attention checkpoint"
) -> dict[str, Any]:
    """The raw plain-data dict of a checkpoint, validated but without building a model.

    `expected_format` is the file's "format" tag (the classifiers' by default; the lung model has
    its own), `what` names it in messages.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} not found: {path}")
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder; give the checkpoint file (e.g. {path}/checkpoint.pt)"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path} is empty (0 bytes): the save was interrupted; retrain or use last.pt"
        )
    if not zipfile.is_zipfile(path):
        # torch.save writes a zip archive; a cut-off download loses the archive's directory at the end.
        with path.open("rb") as fh:
            starts_like_zip = fh.read(4) == b"PK\x03\x04"
        reason = (
            "truncated (incomplete copy or download)" if starts_like_zip else "not a PyTorch file"
        )
        raise CheckpointError(f"{path} is not a readable checkpoint: {reason}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} holds pickled Python objects, not plain data; it is not loaded for safety "
            "(was it saved with torch.save(model)? save a cxr-attention checkpoint instead)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint: {first}") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        hint = (
            " (it looks like a bare state_dict)"
            if isinstance(data, dict)
            and data
            and all(isinstance(v, torch.Tensor) for v in data.values())
            else ""
        )
        if isinstance(data, dict) and data.get("format") in KNOWN_FORMATS:
            hint = f" (it is a {KNOWN_FORMATS[data['format']]})"
        raise CheckpointError(f"{path} is not a {what}{hint}")
    if expected_format != FORMAT:
        return data  # that format checks its own version
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this cxr-attention "
            f"({core.__version__}) reads version {FORMAT_VERSION}"
        )
    for key in ("model", "state_dict"):
        if not isinstance(data.get(key), dict):
            raise CheckpointError(f"{path} lacks its {key!r} section")
    return data


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model exactly as saved; `CheckpointError` on any mismatch."""
    path = Path(path)
    data = read_checkpoint_data(path)
    try:
        config = ModelConfig.from_dict(data["model"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None
    try:
        model = AttentionClassifier(config)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: cannot build its model: {exc}") from None
    state = expand_weights(data["state_dict"], data.get(QUANTIZED))
    load_state_strict(model, state, str(path))
    model.to(device).eval()
    try:
        ood = OodDetector.from_dict(data["ood"]) if data.get("ood") is not None else None
        calibration = (
            TemperatureScaling.from_dict(data["calibration"], config.labels)
            if data.get("calibration") is not None
            else None
        )
        if ood is not None:
            _check_ood_fits(ood, model)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return Checkpoint(
        model=model,
        config=config,
        training=data.get("training") or {},
        created=str(data.get("created", "")),
        package_version=str(data.get("package_version", "")),
        path=path,
        ood=ood,
        calibration=calibration,
    )


def _check_ood_fits(ood: OodDetector, model: AttentionClassifier) -> None:
    channels = {stage.name: stage.channels for stage in model.stages} | {
        FINAL: model.num_features,
        INPUT: LAYOUT_CELLS**2,
    }
    for layer in ood.layers:
        if channels.get(layer.name) != layer.mean.numel():
            raise CheckpointError(
                f"its OOD description of layer {layer.name!r} ({layer.mean.numel()} channels) "
                "does not fit the model"
            )


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load every tensor or refuse, naming the first key that does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing:
        raise CheckpointError(
            f"{where}: weights do not fit the config: missing key {missing[0]!r} ({len(missing)} missing)"
        )
    if unexpected:
        raise CheckpointError(
            f"{where}: weights do not fit the config: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)"
        )
    for key, tensor in own.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{where}: weights do not fit the config: {key!r} has shape "
                f"{tuple(state[key].shape)}, the model expects {tuple(tensor.shape)}"
            )
    model.load_state_dict(state, strict=True)
