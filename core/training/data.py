"""The data side of a run: dataset index, train/validation loaders, augmentation, class weights.

Every process reads the same index (the split is seeded, so all ranks agree) and loads its own shard
through a `DistributedSampler`, also in a world of one: its shuffle depends on (seed, epoch) alone,
so a resumed run sees exactly the order an uninterrupted one would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from cxr_attention.core.data.audit import check_films
from cxr_attention.core.data.augment import RadiographAugment
from cxr_attention.core.data.cache import find_cache
from cxr_attention.core.data.index import DatasetIndex
from cxr_attention.core.data.loader import RadiographDataset, make_loader
from cxr_attention.core.data.sources import open_dataset
from cxr_attention.core.errors import DatasetError
from cxr_attention.core.lungs.cache import LungCache
from cxr_attention.core.training.config import FitConfig
from cxr_attention.core.training.distributed import DistContext
from cxr_attention.core.training.steps import passes_per_epoch, resolved_min_steps


@dataclass
class TrainingData:
    """What the loop needs from the dataset."""

    index: DatasetIndex
    train: RadiographDataset
    val: RadiographDataset
    train_loader: DataLoader
    val_loader: DataLoader
    train_sampler: DistributedSampler  # call set_epoch(epoch) before each epoch
    train_batches: int  # batches per epoch per process (all passes, after max_train_batches)
    passes: int  # times an epoch goes over the training films (core/training/steps.py)
    val_batches: int  # batches of this process's validation shard
    train_targets: np.ndarray  # float32 (n_train, L), for positive-class weights
    split_sizes: dict[str, int]  # images per split
    cache_description: str | None  # the cache folder read, None when decoding files
    lungs: LungCache | None = None  # the films' lung fields, for a lung prior or the lung term
    lung_identity: str = ""  # the lung model that found them
    lungs_left_out: int = 0  # training and validation films without plausible lung fields


def prepare_data(config: FitConfig, context: DistContext) -> TrainingData:
    """Open the dataset, pick up a matching cache, and build this process's loaders."""
    index = check_films(open_dataset(config.data, config.read_options()))
    train_frame, val_frame = index.split("train"), index.split("val")
    lungs, identity, left_out = None, "", 0
    if config.uses_lungs:
        lungs, identity = run_lungs(index, config, context)
        train_frame, val_frame = (
            without_refused(train_frame, lungs),
            without_refused(val_frame, lungs),
        )
        left_out = (
            len(index.split("train")) + len(index.split("val")) - len(train_frame) - len(val_frame)
        )
    for name, frame in (("training", train_frame), ("validation", val_frame)):
        if len(frame) == 0:
            raise DatasetError(
                f"the {name} split of {index.root} is empty: the folder needs more images "
                "(or more patients) for a train/validation split"
            )
    cache = find_cache(index, config.image_size) if config.use_cache else None
    prior = config.lung_prior if lungs is not None else "none"
    train = RadiographDataset(
        train_frame, index.labels, config.image_size, cache=cache, lungs=lungs, prior=prior
    )
    val = RadiographDataset(
        val_frame, index.labels, config.image_size, cache=cache, lungs=lungs, prior=prior
    )
    train_sampler = DistributedSampler(
        train, num_replicas=context.world_size, rank=context.rank, shuffle=True, seed=config.seed
    )
    val_sampler = DistributedSampler(
        val, num_replicas=context.world_size, rank=context.rank, shuffle=False
    )
    # Loaders get their own generator: otherwise each new loader iterator draws a worker seed from
    # the global generator, and persistent workers draw it once per run, not once per epoch, so a
    # resumed run's augmentation stream would drift from an uninterrupted one.
    loader_seed = config.seed + context.rank
    # A last batch of a single image would break batch norm: drop the ragged end when possible.
    train_loader = make_loader(
        train,
        config.batch_size,
        shuffle=False,
        sampler=train_sampler,
        num_workers=config.workers,
        drop_last=len(train_sampler) > config.batch_size,
        seed=loader_seed,
    )
    val_loader = make_loader(
        val,
        config.batch_size,
        shuffle=False,
        sampler=val_sampler,
        num_workers=config.workers,
        seed=loader_seed,
    )
    full = len(train_loader)
    min_steps = resolved_min_steps(config.min_steps, index.source)
    passes = passes_per_epoch(min_steps, config.epochs, full, config.accumulate)
    train_batches = (
        full * passes
        if config.max_train_batches is None
        else min(full * passes, config.max_train_batches)
    )
    return TrainingData(
        index=index,
        train=train,
        val=val,
        train_loader=train_loader,
        val_loader=val_loader,
        train_sampler=train_sampler,
        train_batches=train_batches,
        passes=passes,
        val_batches=len(val_loader),
        train_targets=index.targets(train_frame),
        split_sizes={
            name: int((index.items["split"] == name).sum()) for name in ("train", "val", "test")
        },
        cache_description=None if cache is None else str(cache.folder),
        lungs=lungs,
        lung_identity=identity,
        lungs_left_out=left_out,
    )


def run_lungs(index: DatasetIndex, config: FitConfig, context: DistContext):
    """The lung fields of every film (found once, by the main process, then read by all), and
    the identity of the lung model that found them."""
    from cxr_attention.core.lungs.cache import build_lung_cache, open_lung_cache
    from cxr_attention.core.lungs.shipped import lung_model_at
    from cxr_attention.core.training import distributed as ddp

    model = lung_model_at(config.lung_model)
    if context.is_main:
        build_lung_cache(index, model, progress=config.progress)
    ddp.barrier(context)
    lungs = open_lung_cache(index, model)
    if lungs is None:
        raise DatasetError(f"the lung fields of {index.root} could not be found: see above")
    return lungs, model.identity


def without_refused(frame, lungs: LungCache):
    """The rows of `frame` whose films have plausible lung fields."""
    return frame[~frame["image_id"].isin(set(lungs.refused))].reset_index(drop=True)


def build_augment(config: FitConfig, device: torch.device) -> torch.nn.Module | None:
    """The on-device augmentation for training batches, or None when switched off."""
    if not config.augment:
        return None
    return RadiographAugment(hflip=config.hflip, max_shift=config.max_shift).to(device)


def positive_weights(targets: np.ndarray, max_weight: float = 100.0) -> torch.Tensor:
    """BCE `pos_weight` per label: negatives / positives in the training split.

    A label without positives gets weight 1 (nothing to rebalance); weights are capped at
    `max_weight` so a label with a handful of positives cannot dominate the loss.
    """
    positives = targets.sum(axis=0)
    negatives = targets.shape[0] - positives
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    return torch.as_tensor(np.clip(weights, 1e-3, max_weight), dtype=torch.float32)
