"""Evaluate a trained run on one split: `predictions.csv` and `metrics.json` in the run folder.

The model sees exactly what it saw in training: the same reader (`open_dataset` with the
checkpoint's label set and view filter), the same cache when one matches, and the one preprocessing
path (`config_input`). Operating thresholds come from the checkpoint, where `fit` chose them on the
VALIDATION split; they are never chosen on the split being evaluated. A checkpoint without
thresholds gets them from a pass over its validation split, never from the test split.

Scores are the checkpoint's calibrated probabilities (per-label temperatures fitted on validation
at the end of `fit`; the raw sigmoid for checkpoints without them), and the validation thresholds
were chosen on those same calibrated scores. metrics.json reports calibration before and after
the temperatures, and, for checkpoints that describe their training films, the share of the split
flagged out of distribution.

RUN/predictions.csv, one row per image of the split:
    image_id, patient_id, sex (M/F), age (years, empty when unknown), view (PA/AP), split,
    y_true_<label> (0/1) for each label, then y_score_<label> (calibrated probability in [0, 1]),
    labels in the checkpoint's order; then, for a checkpoint with an OOD description, ood_score
    (the image's out-of-distribution score) and out_of_distribution (1 when above the threshold).

RUN/metrics.json (NaN written as null; `core.metrics.summarize_predictions` documents the metrics):
    run            the run folder's name
    split          the split scored ("test" unless asked otherwise)
    n_images, n_patients
    labels         the checkpoint's labels, in order
    data           source ("phantom" | "chestxray14"), root, fingerprint (of the folder scored),
                   trained_on_fingerprint (of the training data; differs for external data)
    model          backbone, attention, attention_kind ("spatial" | "cbam" | "class", null for
                   a baseline), attention_stages (the gated stages; [] without gates), output_stride,
                   image_size, pretrained (the weights file the run started from, or null)
    threshold_source  where the operating thresholds came from (the checkpoint's validation
                   choice, or a validation pass at evaluation for checkpoints without them)
    micro_auc, micro_auc_ci, macro_auc, macro_auc_ci   AUCs and 95% patient-bootstrap intervals
    per_class      {label: auc, auc_ci, n_positive, prevalence, pauc_fpr10 (McClish-standardised
                   partial AUC, FPR <= 0.1), sens_at_spec90, sens_at_spec95, threshold {youden, f1},
                   sensitivity, specificity, ppv, f1 (at the Youden threshold), brier, ece}
    calibration    brier, ece (all pairs pooled), reliability {label: mean_score,
                   fraction_positive, count per bin}, of the calibrated scores; temperature
                   {label: T} (null when the checkpoint has none) and before_scaling {brier, ece,
                   reliability} of the raw sigmoid (equal to the above without temperatures)
    out_of_distribution  null for checkpoints without an OOD description, else {method,
                   threshold, quantile (share of validation films under it), n_flagged,
                   flagged_share (of the evaluated split)}
    subgroups      {sex | age_band | view: {group: n, micro_auc, macro_auc}}
    bootstrap      n_resamples, unit ("patient"), seed, level (0.95)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cxr_attention.core.errors import ConfigError, DatasetError, RunError
from cxr_attention.core.labels import check_same_labels
from cxr_attention.core.models.checkpoint import Checkpoint, load_checkpoint
from cxr_attention.core.runs import METRICS, PREDICTIONS, RunFolder, write_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# Metadata columns of predictions.csv, before y_true_<label>... and y_score_<label>...
META_COLUMNS = ("image_id", "patient_id", "sex", "age", "view", "split")
DEFAULT_BATCH_SIZE = 64


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: the one asked for, else CUDA, else Apple MPS, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def training_data(checkpoint: Checkpoint, run: RunFolder) -> dict[str, Any]:
    """What the run was trained on: the checkpoint's `training["data"]`, else config.json's."""
    data = dict(checkpoint.training.get("data") or {})
    if run.has("config.json"):
        recorded = run.config().get("data")
        if isinstance(recorded, str):
            recorded = {"root": recorded}
        for key, value in (recorded or {}).items():
            data.setdefault(key, value)
    return data


def resolve_data_root(data: str | Path | None, trained_on: Mapping[str, Any]) -> Path:
    """The dataset folder to evaluate on: `data` when given, else the one the run was trained on."""
    if data is not None:
        root = Path(data).expanduser()
        if not root.exists():
            raise DatasetError(f"dataset not found: {root}")
        return root
    recorded = trained_on.get("table") or trained_on.get("root")  # a CSV, else its folder
    if not recorded:
        raise DatasetError("the run does not record its data folder: pass --data DATA")
    root = Path(recorded).expanduser()
    if not root.exists():
        raise DatasetError(
            f"the run was trained on {root}, which no longer exists: pass --data DATA"
        )
    return root


def open_run_dataset(root: Path, checkpoint: Checkpoint, trained_on: Mapping[str, Any]):
    """`open_dataset` with the run's labels, view filter and seeded carve-outs (so that "val"
    means the same patients), as the run recorded them.

    Raises `DatasetError` when the folder lacks the checkpoint's labels.
    """
    from cxr_attention.core.data.sources import open_dataset, recorded_options

    try:
        index = open_dataset(root, recorded_options(trained_on, checkpoint.labels))
    except ConfigError as exc:
        raise DatasetError(
            f"{exc}: evaluate on data with the labels the run was trained on"
        ) from None
    try:
        check_same_labels(checkpoint.labels, index.labels, f"checkpoint vs data folder {root}")
    except ConfigError as exc:
        raise DatasetError(f"{exc}: evaluate with the label set the run was trained on") from None
    return index


@dataclass(frozen=True)
class FrameScores:
    """A checkpoint's outputs for every image of a frame, in frame order."""

    logits: np.ndarray  # float64 (n, L), raw
    probabilities: np.ndarray  # float64 (n, L), calibrated when the checkpoint has temperatures
    uncalibrated: np.ndarray  # float64 (n, L), the raw sigmoid (before temperature scaling)
    ood: np.ndarray | None  # float64 (n,) OOD scores; None without an OOD description


@torch.inference_mode()
def score_frame(
    checkpoint: Checkpoint,
    index,
    frame: pd.DataFrame,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    desc: str = "evaluate",
) -> FrameScores:
    """Logits, calibrated probabilities and OOD scores for every image of `frame`, one pass.

    Images come from the dataset's cache at the model's size when one matches, else are decoded
    from their files (`num_workers` processes; default one per core without a cache, none with).
    """
    from cxr_attention.core.data.cache import find_cache
    from cxr_attention.core.data.loader import RadiographDataset, default_workers, make_loader
    from cxr_attention.core.data.preprocess import config_input
    from cxr_attention.core.progress import progress_bar
    from cxr_attention.core.trust.features import pooled_forward

    device = device or pick_device()
    model = checkpoint.model.to(device).eval()
    size = checkpoint.config.image_size
    frame = frame.reset_index(drop=True)
    cache = find_cache(index, size)
    if num_workers is None:
        num_workers = 0 if cache is not None else default_workers()
    lungs = frame_lungs(checkpoint, index, progress)
    if lungs is not None and frame["image_id"].isin(set(lungs.refused)).any():
        raise DatasetError(
            "films without plausible lung fields: leave them out first (this is a bug)"
        )
    dataset = RadiographDataset(
        frame, checkpoint.labels, size, cache=cache, lungs=lungs, prior=checkpoint.config.lung_prior
    )
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    logits = np.full((len(frame), len(checkpoint.labels)), np.nan, dtype=np.float64)
    ood = None if checkpoint.ood is None else np.full(len(frame), np.nan, dtype=np.float64)
    for images, _targets, rows in progress_bar(loader, desc=desc, unit="batch", enabled=progress):
        x = config_input(images, checkpoint.config, device)
        rows = np.asarray(rows)
        if ood is None:
            logits[rows] = model(x).float().cpu().numpy()
        else:
            out = pooled_forward(model, x)
            logits[rows] = out.logits.float().cpu().numpy()
            ood[rows] = checkpoint.ood.score(out.features).cpu().numpy()
    if np.isnan(logits).any():
        raise RunError("some images were not scored (loader dropped rows): this is a bug")
    raw = torch.from_numpy(logits)
    probabilities = checkpoint.probabilities(raw).double().numpy()
    return FrameScores(logits, probabilities, torch.sigmoid(raw.float()).double().numpy(), ood)


def frame_lungs(checkpoint: Checkpoint, index, progress: bool = False):
    """The lung fields of the dataset's films when the model reads them through a lung prior
    (`core.lungs.cache`, found once per dataset and lung model), else None."""
    from cxr_attention.core.lungs.cache import build_lung_cache
    from cxr_attention.core.lungs.views import lung_model_for

    lung_model = lung_model_for([checkpoint.config])
    return None if lung_model is None else build_lung_cache(index, lung_model, progress)


def readable_frame(checkpoint: Checkpoint, index, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` the model can read: all of them, unless it has a lung prior and the
    lung model refused a film (those are left out with a warning that counts them)."""
    lungs = frame_lungs(checkpoint, index)
    if lungs is None:
        return frame
    refused = frame["image_id"].isin(set(lungs.refused))
    if refused.any():
        log.warning(
            "%d of %d films have no plausible lung fields and are left out (the model reads the "
            "lung fields alone)",
            int(refused.sum()),
            len(frame),
        )
    return frame[~refused].reset_index(drop=True)


def predict_frame(
    checkpoint: Checkpoint,
    index,
    frame: pd.DataFrame,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: torch.device | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    desc: str = "evaluate",
) -> np.ndarray:
    """Probabilities (len(frame), n_labels) for every image of `frame`, in frame order: the
    checkpoint's calibrated probabilities (the raw sigmoid without temperatures)."""
    scored = score_frame(checkpoint, index, frame, batch_size, device, num_workers, progress, desc)
    return scored.probabilities


def predictions_frame(frame: pd.DataFrame, labels, scores: np.ndarray) -> pd.DataFrame:
    """predictions.csv as a DataFrame: META_COLUMNS, y_true_<label>..., y_score_<label>..."""
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({col: frame[col] for col in META_COLUMNS})
    for label in labels:
        out[f"y_true_{label}"] = frame[label].astype(int).to_numpy()
    for i, label in enumerate(labels):
        out[f"y_score_{label}"] = scores[:, i]
    return out


def validation_thresholds(
    checkpoint: Checkpoint,
    index,
    batch_size: int,
    device: torch.device | None,
    progress: bool,
) -> dict[str, dict[str, float]]:
    """Youden and F1 thresholds chosen on the validation split, for checkpoints that lack them."""
    from cxr_attention.core.metrics import choose_thresholds

    val = index.split("val")
    if len(val) == 0:
        raise RunError(
            "the checkpoint records no thresholds and the data has no validation split to choose "
            "them on: retrain with `cxr-attention fit`"
        )
    val = readable_frame(checkpoint, index, val)
    scores = predict_frame(
        checkpoint, index, val, batch_size, device, progress=progress, desc="val"
    )
    y_true = index.targets(val)
    return choose_thresholds(y_true, scores, checkpoint.labels)


def evaluate_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    split: str = "test",
    batch_size: int = DEFAULT_BATCH_SIZE,
    n_resamples: int = 1000,
    seed: int = 0,
    device: str | torch.device | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score `split` with RUN/checkpoint.pt; write RUN/predictions.csv and RUN/metrics.json.

    Args:
        run_dir: a run folder written by `fit` (holds checkpoint.pt).
        data: dataset folder; default the one the run was trained on.
        split: "test" (default), "val" or "train".
        batch_size: images per forward pass.
        n_resamples: bootstrap resamples (by patient) for the 95% confidence intervals.
        seed: seed of the bootstrap.
        num_workers: decoding processes; default none with an image cache, else one per core.
    Returns:
        The metrics.json content (NaN where a metric is undefined; written as null).
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if n_resamples < 0:
        raise ConfigError("--n-resamples must be 0 or more")
    run = RunFolder.open(run_dir)
    if not run.has("checkpoint.pt"):
        raise RunError(
            f"{run.checkpoint} is missing: train the run first with "
            f"`cxr-attention fit --out {run.path}`"
        )
    device = pick_device(device)
    checkpoint = load_checkpoint(run.checkpoint, device=device)
    trained_on = training_data(checkpoint, run)
    root = resolve_data_root(data, trained_on)
    index = open_run_dataset(root, checkpoint, trained_on)
    frame = readable_frame(checkpoint, index, index.split(split))
    if len(frame) == 0:
        raise DatasetError(f"the {split} split of {root} is empty: nothing to evaluate")
    if trained_on.get("fingerprint") and trained_on["fingerprint"] != index.fingerprint:
        log.warning(
            "evaluating on data that differs from the training data (fingerprint %s, trained on %s)",
            index.fingerprint,
            trained_on["fingerprint"],
        )

    scored = score_frame(checkpoint, index, frame, batch_size, device, num_workers, progress)
    predictions = predictions_frame(frame, checkpoint.labels, scored.probabilities)
    if scored.ood is not None:
        predictions["ood_score"] = scored.ood
        predictions["out_of_distribution"] = (scored.ood > checkpoint.ood.threshold).astype(int)
    tmp = run.path / (PREDICTIONS + ".tmp")
    predictions.to_csv(tmp, index=False)
    tmp.replace(run.path / PREDICTIONS)

    thresholds = checkpoint.training.get("thresholds") or {}
    threshold_source = "checkpoint (validation split)"
    if not all(label in thresholds for label in checkpoint.labels):
        thresholds = validation_thresholds(checkpoint, index, batch_size, device, progress)
        threshold_source = "validation split (chosen at evaluation)"
    if split == "val":
        # chosen on the split now scored: sensitivity/specificity there are optimistic
        threshold_source += "; the evaluated split itself, so operating points are optimistic"

    metrics = _summarize(predictions, checkpoint.labels, thresholds, n_resamples, seed)
    metrics["calibration"] |= _before_scaling(checkpoint, predictions, scored)
    metrics = {
        "run": run.name,
        "split": split,
        "n_images": int(len(predictions)),
        "n_patients": int(predictions["patient_id"].nunique()),
        "labels": list(checkpoint.labels),
        "data": {
            "source": index.source,
            "root": str(Path(index.root).resolve()),
            "fingerprint": index.fingerprint,
            "trained_on_fingerprint": trained_on.get("fingerprint"),
        },
        "model": {
            "backbone": checkpoint.config.backbone,
            "attention": bool(checkpoint.config.attention),
            # spatial, cbam or class (core.models.kinds); None for a baseline
            "attention_kind": checkpoint.config.kind,
            "attention_stages": list(checkpoint.config.attention_stages)
            if checkpoint.config.attention and checkpoint.config.kind != "class"
            else [],
            "output_stride": int(checkpoint.config.output_stride),
            "image_size": int(checkpoint.config.image_size),
            "pretrained": checkpoint.training.get("pretrained"),
        },
        "threshold_source": threshold_source,
        **{k: v for k, v in metrics.items() if k not in _OURS},
        "out_of_distribution": _ood_summary(checkpoint, scored.ood),
    }
    write_json(run.path / METRICS, metrics)
    return metrics


# Keys evaluate_run sets itself; summarize_predictions' values for them are not used.
_OURS = {"run", "split", "n_images", "n_patients", "labels", "data", "model", "threshold_source"}


def _before_scaling(
    checkpoint: Checkpoint, predictions: pd.DataFrame, scored: FrameScores
) -> dict[str, Any]:
    """metrics.json's calibration additions: the temperatures and the raw sigmoid's figures."""
    from cxr_attention.core.metrics import calibration_summary, predictions_arrays

    y_true, _ = predictions_arrays(predictions, checkpoint.labels)
    temperature = None
    if checkpoint.calibration is not None:
        temperature = checkpoint.calibration.to_dict()["temperature"]
    return {
        "temperature": temperature,
        "before_scaling": calibration_summary(y_true, scored.uncalibrated, checkpoint.labels),
    }


def _ood_summary(checkpoint: Checkpoint, scores: np.ndarray | None) -> dict[str, Any] | None:
    """metrics.json's out_of_distribution section (None for checkpoints without one)."""
    from cxr_attention.core.trust.ood import METHOD

    if checkpoint.ood is None or scores is None:
        return None
    flagged = scores > checkpoint.ood.threshold
    return {
        "method": METHOD,
        "threshold": checkpoint.ood.threshold,
        "quantile": checkpoint.ood.quantile,
        "n_flagged": int(flagged.sum()),
        "flagged_share": float(flagged.mean()),
    }


def _summarize(
    predictions: pd.DataFrame,
    labels,
    thresholds: Mapping[str, Mapping[str, float]],
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    from cxr_attention.core.metrics import summarize_predictions

    return summarize_predictions(
        predictions,
        labels=list(labels),
        thresholds={k: dict(v) for k, v in thresholds.items()},
        n_resamples=n_resamples,
        seed=seed,
    )
