"""What rank 0 records after each epoch besides history.csv: the attention timeline and TensorBoard.

The timeline (`timeline.py`) is always kept when the validation split has films with truth.
TensorBoard event files go to RUN/tensorboard when the optional `tensorboard` package is installed
(`pip install 'cxr-attention[tensorboard]'`) and `FitConfig.tensorboard` is on: the losses, AUCs,
learning rate and throughput of every epoch, and the timeline films with their attention maps.
`tensorboard --logdir RUN` shows them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxr_attention.core.explain.base import upsample
from cxr_attention.core.models.classifier import AttentionClassifier
from cxr_attention.core.training.record import EpochRecord
from cxr_attention.core.training.timeline import (
    TimelineImages,
    drop_epochs_after,
    epoch_maps,
    pick_timeline_images,
    write_epoch_maps,
    write_timeline_images,
)

log = logging.getLogger(__name__)

TENSORBOARD = "tensorboard"
_SCALARS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "val_macro_auc": "auc/val_macro",
    "val_micro_auc": "auc/val_micro",
    "lr": "optim/lr",
    "images_per_s": "speed/images_per_s",
}


def open_summary_writer(folder: Path) -> Any | None:
    """A TensorBoard `SummaryWriter` on `folder`, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises this when the tensorboard package is absent
        return None
    return SummaryWriter(log_dir=str(folder))


class EpochWatch:
    """Call `after_epoch` once per finished epoch (rank 0), `close` when training ends."""

    def __init__(self, run: Path, images: TimelineImages | None, board: Any | None) -> None:
        self.run = run
        self.images = images
        self.board = board

    @classmethod
    def open(
        cls,
        run: Path,
        index,
        val_frame,
        labels,
        image_size: int,
        epochs_done: int,
        tensorboard: bool,
        config=None,
        lung_model=None,
    ) -> EpochWatch:
        """Pick the timeline films (written once) and open TensorBoard if asked and installed;
        a model's `config` and `lung_model` show them as a model with a lung prior sees them."""
        images = pick_timeline_images(
            index, val_frame, labels, image_size, config=config, lung_model=lung_model
        )
        if images is not None:
            write_timeline_images(run, images)
            drop_epochs_after(run, epochs_done)
        board = open_summary_writer(run / TENSORBOARD) if tensorboard else None
        if tensorboard and board is None:
            log.info("no TensorBoard event files: `pip install tensorboard` to get them")
        return cls(run, images, board)

    def after_epoch(self, model: AttentionClassifier, record: EpochRecord) -> None:
        maps = None
        if self.images is not None:
            model.eval()
            maps = epoch_maps(model, self.images, record.epoch)
            write_epoch_maps(self.run, maps)
        if self.board is None:
            return
        values = asdict(record)
        for field, tag in _SCALARS.items():
            self.board.add_scalar(tag, values[field], record.epoch)
        if maps is not None:
            for name, gate in maps.gates.items():
                self.board.add_images(f"attention/{name}", self._overlay(gate), record.epoch)
            self.board.add_images("gradcam/final", self._overlay(maps.gradcam), record.epoch)
        self.board.flush()

    def _overlay(self, maps: np.ndarray) -> np.ndarray:
        """Film in grey, map in red, truth outline in green: (N, 3, S, S) float in [0, 1]."""
        views = self.images.views.astype(np.float32) / 255.0
        size = views.shape[-1]
        heat = upsample(torch.from_numpy(maps[:, None]), (size, size))[:, 0].numpy()
        truth = self.images.truth.astype(bool)
        edge = truth & ~_eroded(truth)
        red = np.clip(0.6 * views + 0.6 * heat, 0, 1)
        green = np.where(edge, 1.0, 0.6 * views)
        blue = 0.6 * views
        return np.stack([red, green, blue], axis=1)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def _eroded(mask: np.ndarray) -> np.ndarray:
    """Each (N, S, S) mask shrunk by one pixel (4-neighbourhood)."""
    inner = mask.copy()
    inner[:, 1:, :] &= mask[:, :-1, :]
    inner[:, :-1, :] &= mask[:, 1:, :]
    inner[:, :, 1:] &= mask[:, :, :-1]
    inner[:, :, :-1] &= mask[:, :, 1:]
    return inner
