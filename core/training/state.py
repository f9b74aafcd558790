"""`last.pt`: everything needed to continue a run exactly where it stopped.

Written atomically at the end of every epoch (after validation), so a killed job loses at most the
epoch in progress. Schema (plain data, loadable with `weights_only=True`)::

    {"format": "cxr-attention-train-state", "format_version": 1,
     "fit_config": FitConfig as a dict, "world_size": int,
     "epoch": epochs completed, "best_val_macro_auc": float, "best_epoch": int,
     "epochs_since_best": int, "best_thresholds": {label: {"youden": t, "f1": t}},
     "model": state_dict, "optimizer": state_dict, "schedule": {"steps_done": int},
     "scaler": GradScaler state (empty when unused),
     "rng": [one `capture_rng()` dict per rank, in rank order]}
"""

from __future__ import annotations

import math
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cxr_attention.core.errors import CheckpointError, ConfigError, RunError
from cxr_attention.core.runs import RunFolder
from cxr_attention.core.training.config import FitConfig
from cxr_attention.core.training.optim import WarmupCosine
from cxr_attention.core.training.rng import restore_rng, seed_everything

FORMAT = "cxr-attention-train-state"
FORMAT_VERSION = 1


@dataclass
class Progress:
    """The counters that decide what happens next: where we are and how early stopping stands."""

    epoch: int = 0  # epochs completed
    best_val_macro_auc: float = math.nan  # best validation macro AUC so far
    best_epoch: int = 0  # 1-based epoch that reached it (0 = none yet)
    epochs_since_best: int = 0  # for patience
    best_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)

    def record(self, epoch: int, val_macro_auc: float) -> bool:
        """Count one finished epoch; True when it is the best so far.

        The first epoch always counts as best (so checkpoint.pt exists even when validation has no
        AUC, e.g. a split with one class); a NaN AUC never beats a number.
        """
        self.epoch = epoch
        best = self.best_val_macro_auc
        improved = self.best_epoch == 0 or (
            not math.isnan(val_macro_auc) and (math.isnan(best) or val_macro_auc > best)
        )
        if improved:
            self.best_val_macro_auc = val_macro_auc
            self.best_epoch = epoch
            self.epochs_since_best = 0
        else:
            self.epochs_since_best += 1
        return improved

    def patience_spent(self, patience: int | None) -> bool:
        return patience is not None and self.epochs_since_best >= patience

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "best_val_macro_auc": self.best_val_macro_auc,
            "best_epoch": self.best_epoch,
            "epochs_since_best": self.epochs_since_best,
            "best_thresholds": self.best_thresholds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        return cls(
            epoch=int(data["epoch"]),
            best_val_macro_auc=float(data["best_val_macro_auc"]),
            best_epoch=int(data["best_epoch"]),
            epochs_since_best=int(data["epochs_since_best"]),
            best_thresholds=dict(data.get("best_thresholds") or {}),
        )


def save_train_state(path: Path, payload: dict[str, Any]) -> None:
    """Write last.pt atomically: a kill mid-write leaves the previous last.pt intact."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(data, tmp)
    tmp.replace(path)


def load_train_state(path: Path) -> dict[str, Any]:
    """Read last.pt safely (`weights_only=True`); `CheckpointError` saying what to do otherwise."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(
            f"{path} cannot be read ({first}): delete it to restart the run from scratch"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cxr-attention training state (last.pt)")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has training-state version {data.get('format_version')}, this cxr-attention "
            f"reads {FORMAT_VERSION}: finish it with the version that wrote it or restart"
        )
    return data


def resumable_state(run: RunFolder, config: FitConfig) -> dict[str, Any] | None:
    """last.pt when resuming (None to start afresh); refuses to overwrite a run without --resume
    and to resume one that was trained with other options."""
    if not config.resume:
        if run.last_checkpoint.exists() or run.checkpoint.exists():
            raise RunError(
                f"{run.path} already holds a run: pass --resume to continue it or choose another --out"
            )
        return None
    if not run.last_checkpoint.exists():
        if run.checkpoint.exists():
            raise RunError(f"{run.path} has checkpoint.pt but no last.pt, so it cannot be resumed")
        return None  # nothing saved yet: start (a restarted sweep reaching an unstarted run)
    saved = load_train_state(run.last_checkpoint)
    # A run from before --min-steps made one pass an epoch; once finished it trains nothing more,
    # so whatever --min-steps says now cannot change it.
    before_min_steps = "min_steps" not in saved["fit_config"]
    differences = config.differences(FitConfig.from_dict({"min_steps": 0} | saved["fit_config"]))
    if before_min_steps and is_finished(saved, config):
        differences = [d for d in differences if not d.startswith("min_steps:")]
    if differences:
        raise ConfigError(
            f"--resume: {run.path} was trained with other options ({'; '.join(differences)}): "
            "pass the same options or choose another --out"
        )
    return saved


def is_finished(saved: dict[str, Any], config: FitConfig) -> bool:
    """Whether a saved run has nothing left to do (all epochs, or early stopping reached)."""
    progress = Progress.from_dict(saved)
    return progress.epoch >= config.epochs or progress.patience_spent(config.patience)


def train_state(
    config: FitConfig,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: WarmupCosine,
    scaler: torch.amp.GradScaler,
    progress: Progress,
    rng_per_rank: list[dict[str, Any]],
) -> dict[str, Any]:
    """The payload of last.pt (see the module docstring)."""
    return {
        "fit_config": config.to_dict(),
        "world_size": len(rng_per_rank),
        **progress.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "rng": rng_per_rank,
    }


def restore_train_state(
    saved: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: WarmupCosine,
    scaler: torch.amp.GradScaler,
    rank: int,
    world_size: int,
) -> tuple[Progress, bool]:
    """Put a saved run back in place; returns its progress and whether this rank's random
    stream continues exactly (False when the number of processes changed)."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    if saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    states = saved["rng"]
    exact = len(states) == world_size
    if exact:
        restore_rng(states[rank])
    else:
        seed_everything(rank_seed(int(saved["fit_config"]["seed"]), rank) + int(saved["epoch"]))
    return Progress.from_dict(saved), exact


def rank_seed(seed: int, rank: int) -> int:
    """The seed of one process's augmentation and dropout stream (rank 0 keeps `seed`)."""
    return seed + 1_000_003 * rank
