"""The run folder's record of training: `history.csv` (one row per epoch) and `config.json`."""

from __future__ import annotations

import csv
import datetime as dt
import math
import platform
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import timm
import torch

from cxr_attention import core
from cxr_attention.core.data.loader import make_loader
from cxr_attention.core.metrics.thresholds import choose_thresholds
from cxr_attention.core.models.checkpoint import load_checkpoint, save_checkpoint
from cxr_attention.core.runs import CONFIG, RunFolder, write_json
from cxr_attention.core.training.config import FIT_OPTIONS, FitConfig
from cxr_attention.core.training.data import TrainingData
from cxr_attention.core.training.device import DevicePlan, select_device
from cxr_attention.core.training.distributed import detect_context
from cxr_attention.core.training.model import model_config, pretrained_source
from cxr_attention.core.training.start import start_record
from cxr_attention.core.training.state import Progress
from cxr_attention.core.trust.fit import TrustFit, fit_trust


@dataclass(frozen=True)
class EpochRecord:
    """One row of history.csv."""

    epoch: int  # 1-based
    train_loss: float  # mean BCE over the epoch's training batches (all processes)
    val_loss: float  # mean BCE over the validation split
    val_macro_auc: float  # mean of per-class AUCs (classes with both values)
    val_micro_auc: float  # AUC of all (image, label) pairs pooled
    lr: float  # learning rate at the end of the epoch
    seconds: float  # wall time of the epoch, validation included
    images_per_s: float  # training images per second, all processes together


HISTORY_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(EpochRecord))


def append_history(path: Path, record: EpochRecord) -> None:
    """Add one row (writing the header first for a new file)."""
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(HISTORY_COLUMNS)
        writer.writerow([_cell(getattr(record, name)) for name in HISTORY_COLUMNS])


def truncate_history(path: Path, epochs_done: int) -> None:
    """Drop rows past `epochs_done` (an epoch that was logged but not saved before a kill)."""
    if not path.exists():
        return
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) <= epochs_done]
    if len(kept) != len(rows):
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="") as fh:
            csv.writer(fh).writerows(kept)
        tmp.replace(path)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def environment() -> dict[str, str]:
    """Versions a reader needs to reproduce the run."""
    return {
        "package_version": core.__version__,
        "torch_version": torch.__version__,
        "timm_version": timm.__version__,
        "python_version": platform.python_version(),
    }


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def data_summary(config: FitConfig, data: TrainingData) -> dict[str, Any]:
    """Which data trained the run: enough to reopen the same split (config.json, checkpoint)."""
    index = data.index
    return {
        "source": index.source,
        "title": index.title,
        "root": str(index.root),
        # a CSV's films lie under its folder (root), but the CSV itself is what reopens them
        "table": str(Path(config.data).expanduser().resolve()) if index.source == "table" else None,
        "fingerprint": index.fingerprint,
        "label_set": config.labels,
        "labels": list(index.labels),
        "views": list(config.views),
        "uncertain": config.uncertain,
        "split": {
            # "official" lists, "given" (test folder or split column), "patient" (seeded)
            "method": index.split_method,
            "seed": index.seed,
            "val_fraction": config.val_fraction,
            "test_fraction": config.test_fraction,
            "sizes": data.split_sizes,
        },
        "findings": [finding.as_json() for finding in index.findings],
        "cache": data.cache_description,
    }


def training_summary(config: FitConfig, data: TrainingData, progress: Progress) -> dict[str, Any]:
    """The checkpoint's `training` dict (schema in core/models/checkpoint.py)."""
    return {
        "epochs": progress.epoch,
        "best_epoch": progress.best_epoch,
        "best_val_macro_auc": progress.best_val_macro_auc,
        "data": data_summary(config, data),
        "pretrained": pretrained_source(config),
        "start": start_record(
            config.pretrained, model_config(config, data.index.labels), FIT_OPTIONS
        ),
        "thresholds": progress.best_thresholds,
        "seed": config.seed,
        "map_equivariance": config.map_equivariance,
        "lung_weight": config.lung_weight,
    }


def finalise_checkpoint(
    run: RunFolder,
    config: FitConfig,
    data: TrainingData,
    progress: Progress,
    stopped: str | None,
) -> TrustFit:
    """Complete checkpoint.pt once training ends or pauses (rank 0 only).

    Records how many epochs the run trained in all and why it ended ("epochs", "early_stopping",
    or None while --resume can still continue it), then fits the trust sections (`fit_trust_into`).
    """
    summary = training_summary(config, data, progress) | {"stopped": stopped}
    return fit_trust_into(run, config, data, summary)


def fit_trust_into(
    run: RunFolder, config: FitConfig, data: TrainingData, training: dict[str, Any]
) -> TrustFit:
    """Fit the OOD description (training split, threshold on validation) and per-label
    temperatures (validation) of the model in run/checkpoint.pt, re-choose its operating thresholds
    on the calibrated validation scores (`core.trust.fit`), and save them with `training`.

    Also for a model whose weights changed after training (the demo zoo's 8-bit copies): its
    features moved, so a description fitted on the original would misjudge it.
    """
    device = select_device(config.device, detect_context().local_rank)
    best = load_checkpoint(run.checkpoint, device=device)
    train_batches, val_batches = _trust_batches(config, data)
    trust = fit_trust(best.model, train_batches, val_batches, config.batch_size, device)
    thresholds = choose_thresholds(trust.val_targets, trust.val_probabilities, best.labels)
    save_checkpoint(
        run.checkpoint,
        best.model.cpu(),
        training | {"thresholds": thresholds, "thresholds_on": "calibrated validation scores"},
        ood=trust.ood.to_dict(),
        calibration=trust.calibration_section(),
    )
    return trust


def refit_trust(run_dir: str | Path, data: str | Path | None = None) -> TrustFit:
    """`fit_trust_into` for a finished run whose weights were changed afterwards, on the data and
    split its config.json names (in this process, without loader workers). `data`: where that
    dataset is on this machine, when not where the run was trained (a shipped model)."""
    from cxr_attention.core.training.data import prepare_data

    run = RunFolder(Path(run_dir))
    options = run.config()["fit"] | {"out": str(run.path), "workers": 0, "progress": False}
    if data is not None:
        options["data"] = str(data)
    config = FitConfig.from_dict(options)
    splits = prepare_data(config, detect_context())
    training = load_checkpoint(run.checkpoint).training
    return fit_trust_into(run, config, splits, training)


def _trust_batches(config: FitConfig, data: TrainingData):
    """Loaders over the whole training and validation splits: the run's own in a world of one
    (their workers are warm), otherwise unsharded ones (rank 0 alone fits)."""
    if data.train_sampler.num_replicas == 1:
        return data.train_loader, data.val_loader
    train = make_loader(
        data.train, config.batch_size, True, num_workers=config.workers, seed=config.seed
    )
    val = make_loader(data.val, config.batch_size, False, num_workers=config.workers)
    return train, val


def write_config(
    run: RunFolder,
    config: FitConfig,
    data: TrainingData,
    world_size: int,
    plan: DevicePlan,
    resumed: bool,
) -> None:
    """config.json: written when a run starts; a resumed run appends when and where it resumed."""
    path = run.path / CONFIG
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if resumed and path.exists():
        previous = run.config()
        previous.setdefault("resumed", []).append(
            {
                "time": now,
                "world_size": world_size,
                "device": device_description(plan.device),
                # "auto" may resolve otherwise on another machine: say what this part ran in
                "amp": plan.amp,
                "channels_last": plan.channels_last,
            }
        )
        write_json(path, previous)
        return
    write_json(
        path,
        {
            "fit": config.to_dict(),
            "model": model_config(config, data.index.labels, data.lung_identity).to_dict(),
            "data": data_summary(config, data),
            "seed": config.seed,
            "world_size": world_size,
            "device": device_description(plan.device),
            "amp": plan.amp,
            "channels_last": plan.channels_last,
            "deterministic": plan.device.type == "cpu",
            "pretrained": pretrained_source(config),
            "start": start_record(
                config.pretrained, model_config(config, data.index.labels), FIT_OPTIONS
            ),
            **environment(),
            "created": now,
        },
    )


def rethreshold_ood(run_dir: str | Path, data: str | Path | None = None) -> float:
    """Choose the OOD threshold of RUN/checkpoint.pt again on the validation scores of the
    description as stored (a compact checkpoint keeps it in float16, and a Mahalanobis score of
    rounded statistics moves: the 8-bit gate model of the real-film zoo flagged 24 % of its own
    validation films under a threshold chosen before the rounding). Writes only the threshold;
    returns the share of validation films it passes."""
    import numpy as np

    from cxr_attention.core.models.checkpoint import read_checkpoint_data
    from cxr_attention.core.training.data import prepare_data
    from cxr_attention.core.trust.features import collect_outputs

    run = RunFolder(Path(run_dir))
    options = run.config()["fit"] | {"out": str(run.path), "workers": 0, "progress": False}
    if data is not None:
        options["data"] = str(data)
    config = FitConfig.from_dict(options)
    splits = prepare_data(config, detect_context())
    checkpoint = load_checkpoint(run.checkpoint)
    val = collect_outputs(checkpoint.model, splits.val_loader)
    features = {name: torch.from_numpy(value) for name, value in val.features.items()}
    scores = checkpoint.ood.score(features).numpy()
    threshold = float(np.quantile(scores, checkpoint.ood.quantile))
    raw = read_checkpoint_data(run.checkpoint)
    raw["ood"]["threshold"] = threshold
    torch.save(raw, run.checkpoint)
    return float((scores <= threshold).mean())
