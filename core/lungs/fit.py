"""Training the lung segmenter on outlined films (`cxr-attention fit-lungs`).

Every film and mask is read once into the segmenter's view (`model_view`: padded, resized) and
kept in memory (704 films at 256 px are 46 MB). Each epoch draws every training pair anew
(`core.lungs.augment.augment_pair`: re-proportioned, moved, opacified, marked, exposed), and the
network learns binary cross-entropy plus soft Dice. The epoch with the best mean Dice on the
validation films (in the view, without augmentation) is kept; the figures that describe the model
are then measured at each film's own size through the same path `cxr-attention lungs` takes
(`core.lungs.evaluate`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import ConfigError, DatasetError, RadiographError
from cxr_attention.core.lungs.augment import augment_pair
from cxr_attention.core.lungs.model import (
    LungModel,
    LungModelConfig,
    build_segmenter,
    lung_payload,
    standardise,
)
from cxr_attention.core.lungs.pairs import OutlinedFilm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LungFitConfig:
    """How the segmenter is trained (every field is recorded in its checkpoint)."""

    epochs: int = 6
    batch_size: int = 16
    lr: float = 2e-3  # AdamW, from scratch; cosine decay after one warm-up epoch
    weight_decay: float = 1e-4
    opacity: float = 0.6  # share of training films painted with opacities each epoch
    seed: int = 0
    max_batches: int | None = None  # per epoch (tests and quick looks)
    model: LungModelConfig = field(default_factory=LungModelConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("fit-lungs needs --epochs >= 1 and --batch-size >= 2")
        if not 0.0 <= self.opacity <= 1.0:
            raise ConfigError(f"--opacity is a share in [0, 1], got {self.opacity}")

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"model": self.model.to_dict()}


@dataclass
class Pairs:
    """Films and masks in the segmenter's view: uint8 (N, S, S) and bool (N, S, S)."""

    names: list[str]
    films: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def read_mask(path: Path) -> np.ndarray:
    """A lung mask file as bool at its own size (non-zero is lung)."""
    try:
        image = load_radiograph(path)
    except RadiographError as exc:
        raise DatasetError(f"cannot read the mask {path.name}: {exc}") from None
    return image.pixels > 0.5


def mask_view(mask: np.ndarray, size: int) -> np.ndarray:
    """A film-sized bool mask in the view of that film: pixels at least half covered."""
    return model_view(mask.astype(np.float32), size) >= 128


def read_pairs(films: Sequence[OutlinedFilm], size: int) -> Pairs:
    """Every film and its mask, in the view at `size`."""
    views = np.empty((len(films), size, size), np.uint8)
    masks = np.empty((len(films), size, size), bool)
    for i, item in enumerate(films):
        try:
            film = load_radiograph(item.film)
        except RadiographError as exc:
            raise DatasetError(f"cannot read the film {item.name}: {exc}") from None
        mask = read_mask(item.mask)
        if mask.shape != (film.height, film.width):
            raise DatasetError(
                f"{item.name}: the mask is {mask.shape[1]} x {mask.shape[0]} px but the film is "
                f"{film.width} x {film.height}: a mask must have its film's size"
            )
        views[i] = model_view(film, size)
        masks[i] = mask_view(mask, size)
    return Pairs([f.name for f in films], views, masks)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice over each film, averaged."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(1, 2, 3))
    total = p.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return (1 - (2 * inter + 1) / (total + 1)).mean()


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two bool masks (1 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _batches(n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(n)
    return [order[i : i + size] for i in range(0, n - size + 1, size)] or [order]


def view_dice(network: torch.nn.Module, pairs: Pairs, batch_size: int = 32) -> float:
    """Mean Dice over `pairs` in the view (threshold 0.5, no clean-up): the choice of epoch."""
    network.eval()
    scores = []
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            views = torch.from_numpy(pairs.films[start : start + batch_size]).unsqueeze(1)
            found = (network(standardise(views)) > 0).numpy()[:, 0]
            truth = pairs.masks[start : start + batch_size]
            scores += [dice(f, t) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(scores))


def fit_segmenter(
    train: Pairs,
    val: Pairs,
    config: LungFitConfig,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[LungModel, list[dict[str, float]]]:
    """Train a segmenter; returns it (best validation epoch, eval mode) and one row per epoch."""
    if len(train) < config.batch_size:
        raise DatasetError(
            f"{len(train)} training films for batches of {config.batch_size}: give more films "
            "or a smaller --batch-size"
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    network = build_segmenter(config.model)
    optimiser = torch.optim.AdamW(
        network.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    per_epoch = len(_batches(len(train), config.batch_size, rng))
    if config.max_batches is not None:
        per_epoch = min(per_epoch, config.max_batches)
    total = per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: _lr_factor(step, per_epoch, total)
    )
    best, best_state, history = -1.0, None, []
    for epoch in range(1, config.epochs + 1):
        network.train()
        started, losses = time.perf_counter(), []
        for batch in _batches(len(train), config.batch_size, rng)[:per_epoch]:
            drawn = [
                augment_pair(train.films[i], train.masks[i], rng, config.opacity) for i in batch
            ]
            x = torch.from_numpy(np.stack([f for f, _ in drawn])).unsqueeze(1)
            y = torch.from_numpy(np.stack([m for _, m in drawn])).unsqueeze(1).float()
            logits = network(standardise(x))
            loss = F.binary_cross_entropy_with_logits(logits, y) + dice_loss(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        score = view_dice(network, val)
        row = {
            "epoch": epoch,
            "loss": float(np.mean(losses)),
            "val_dice": score,
            "lr": optimiser.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        log.info("fit-lungs epoch %d: loss %.4f, validation Dice %.4f", epoch, row["loss"], score)
        if on_epoch is not None:
            on_epoch(row)
        if score > best:
            best = score
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
    network.load_state_dict(best_state)
    network.eval()
    best_epoch = max(history, key=lambda r: r["val_dice"])["epoch"]
    training = {
        "fit": config.as_json(),
        "epochs": config.epochs,
        "best_epoch": best_epoch,
        "val_dice": best,
        "seconds": round(sum(r["seconds"] for r in history), 1),
    }
    model = LungModel(network=network, config=config.model, training=training)
    return model, history


def payload_of(model: LungModel, card: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint data of a trained segmenter."""
    return lung_payload(model.network, model.config, model.training, card, model.familiarity)


def _lr_factor(step: int, per_epoch: int, total: int) -> float:
    """Linear warm-up over the first epoch, cosine decay to 2 % after it."""
    if step < per_epoch:
        return (step + 1) / per_epoch
    progress = (step - per_epoch) / max(1, total - per_epoch)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
