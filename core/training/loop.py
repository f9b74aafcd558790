"""`fit(config) -> RunFolder`: train one variant, validating every epoch, resumable at any epoch.

The loop, top to bottom:

1. place this process (torchrun rank, device, precision); seed inside an isolated RNG scope;
2. build the model (local pretrained weights or random init), then read the dataset and build
   loaders (a matching uint8 cache is used when present);
3. AdamW with a warm-up + cosine schedule counted in optimiser steps; with `resume`, put back
   everything last.pt holds and continue from the epoch after the last one saved;
4. per epoch: train, validate (macro and micro AUC over the whole split, gathered from every
   process), append to history.csv, save checkpoint.pt when validation macro AUC improves (with
   per-class thresholds chosen on validation), save last.pt; stop early when patience runs out.

Only rank 0 writes; every rank reaches the same decisions because metrics are gathered everywhere.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from cxr_attention.core.errors import CxrError, RunError
from cxr_attention.core.lungs.shipped import lung_model_at
from cxr_attention.core.metrics.thresholds import choose_thresholds
from cxr_attention.core.models.checkpoint import save_checkpoint
from cxr_attention.core.runs import HISTORY, RunFolder
from cxr_attention.core.training import distributed as ddp
from cxr_attention.core.training.advice import still_improving_line
from cxr_attention.core.training.config import FitConfig
from cxr_attention.core.training.data import (
    TrainingData,
    build_augment,
    positive_weights,
    prepare_data,
)
from cxr_attention.core.training.device import DevicePlan, plan_device
from cxr_attention.core.training.epoch import StepParts, ValResult, train_one_epoch, validate
from cxr_attention.core.training.model import (
    build_model,
    check_pretrained,
    model_config,
    start_head_at_prior,
)
from cxr_attention.core.training.optim import (
    WarmupCosine,
    build_optimizer,
    optimizer_steps_per_epoch,
)
from cxr_attention.core.training.progress import Reporter
from cxr_attention.core.training.record import (
    EpochRecord,
    append_history,
    finalise_checkpoint,
    training_summary,
    truncate_history,
    write_config,
)
from cxr_attention.core.training.rng import capture_rng, isolated_rng, seed_everything
from cxr_attention.core.training.start import starts_from_project_model
from cxr_attention.core.training.state import (
    Progress,
    is_finished,
    rank_seed,
    restore_train_state,
    resumable_state,
    save_train_state,
    train_state,
)
from cxr_attention.core.training.steps import epoch_batches, passes_line
from cxr_attention.core.training.watch import EpochWatch


def fit(config: FitConfig) -> RunFolder:
    """Train the variant `config` describes into the run folder `config.out`.

    Returns the run folder (checkpoint.pt = best epoch by validation macro AUC, last.pt, config.json,
    history.csv). Under torchrun every process calls this; rank 0 alone writes. The caller's global
    random generators and torch thread count are left as they were.
    """
    context = ddp.detect_context()
    plan = plan_device(config.device, config.amp, context.local_rank)
    created_group = ddp.start(context, plan.device)
    threads = torch.get_num_threads()
    try:
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        with isolated_rng():
            return _fit(config, context, plan)
    finally:
        torch.set_num_threads(threads)
        ddp.stop(created_group)


def _fit(config: FitConfig, context: ddp.DistContext, plan: DevicePlan) -> RunFolder:
    report = Reporter(context.is_main, config.progress)
    run = RunFolder(Path(config.out))
    saved = resumable_state(run, config)
    if saved is not None and is_finished(saved, config):
        if is_finalised(run):
            report.info(
                "%s is already complete (%d epochs): nothing to do", run.path, saved["epoch"]
            )
            return run
        return _finalise_only(config, run, Progress.from_dict(saved), context, report)

    seed_everything(config.seed)
    check_pretrained(config)  # a bad --pretrained fails before the dataset is read
    data = prepare_data(config, context)  # the data name the labels the model outputs
    model = build_model(config, data.index.labels, data.lung_identity).to(plan.device)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.head_prior:
        start_head_at_prior(model, data.train_targets)  # (a resumed run restores its own head)
    optimizer = build_optimizer(model, config.lr, config.weight_decay, config.gate_lr_scale)
    steps_per_epoch = optimizer_steps_per_epoch(data.train_batches, config.accumulate)
    schedule = WarmupCosine(
        optimizer,
        peak_lr=config.lr,
        total_steps=steps_per_epoch * config.epochs,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
        min_ratio=config.min_lr_ratio,
    )
    scaler = plan.grad_scaler()

    progress = Progress()
    if saved is None:
        # Each rank draws its own augmentation and dropout noise from here on.
        seed_everything(rank_seed(config.seed, context.rank))
    else:
        progress, exact = restore_train_state(
            saved, model, optimizer, schedule, scaler, context.rank, context.world_size
        )
        if not exact:
            report.warning(
                "resumed with %d processes where the run had %d: random streams restart, so "
                "the result will differ slightly from an uninterrupted run",
                context.world_size,
                len(saved["rng"]),
            )
        report.info(
            "resuming after epoch %d (best val macro AUC %.3f)",
            progress.epoch,
            progress.best_val_macro_auc,
        )
    watch = None
    if context.is_main:
        run.path.mkdir(parents=True, exist_ok=True)
        truncate_history(run.path / HISTORY, progress.epoch)
        write_config(run, config, data, context.world_size, plan, resumed=saved is not None)
        watch = EpochWatch.open(
            run.path,
            data.index,
            data.index.split("val"),
            model.config.labels,
            config.image_size,
            progress.epoch,
            config.tensorboard,
            config=model.config,
            lung_model=lung_model_at(config.lung_model) if data.lungs is not None else None,
        )
    ddp.barrier(context)

    parts = StepParts(
        model=_wrap(model, plan, context),
        model_config=model_config(config, data.index.labels, data.lung_identity),
        pos_weight=positive_weights(data.train_targets).to(plan.device)
        if config.pos_weight
        else None,
        optimizer=optimizer,
        schedule=schedule,
        scaler=scaler,
        plan=plan,
        augment=build_augment(config, plan.device),
        accumulate=config.accumulate,
        clip_grad=config.clip_grad,
        equivariance=config.map_equivariance,
        lung_weight=config.lung_weight,
        lung_fields=data.train.lung_fields if data.lungs is not None else None,
    )
    report.info(
        "training %s on %s: %d train / %d val images, %d process(es), %s, amp %s, lr %g%s",
        parts.model_config.variant,
        data.index.source,
        len(data.train),
        len(data.val),
        context.world_size,
        plan.device,
        plan.amp,
        config.lr,
        _lr_note(config),
    )
    for finding in data.index.findings:
        report.info("data: %s", finding.line())
    if data.lungs is not None:
        report.info(
            "lung fields by the lung model %s (prior %s, lung term %g); %d films without plausible "
            "lung fields left out",
            data.lung_identity,
            config.lung_prior,
            config.lung_weight,
            data.lungs_left_out,
        )
    if data.passes > 1:
        report.info("%s", passes_line(data.passes, len(data.train), config.epochs, steps_per_epoch))
    if config.use_cache and data.cache_description is None:
        report.info(
            "no image cache at %d px: decoding files every epoch (`cxr-attention cache %s --size "
            "%d` makes epochs faster)",
            config.image_size,
            data.index.root,
            config.image_size,
        )
    try:
        stopped = _train_epochs(config, run, data, parts, progress, context, report, watch)
    finally:
        if watch is not None:
            watch.close()

    if stopped is None:
        report.info(
            "stopped after epoch %d of %d: continue with --resume", progress.epoch, config.epochs
        )
    if context.is_main:
        finalise_checkpoint(run, config, data, progress, stopped)
    report.info(
        "best val macro AUC %.3f at epoch %d; run folder %s",
        progress.best_val_macro_auc,
        progress.best_epoch,
        run.path,
    )
    if stopped == "epochs" and context.is_main:
        advice = still_improving_line(run.history()["val_macro_auc"].tolist())
        if advice:
            report.info("%s", advice)
    ddp.barrier(context)
    return run


def is_finalised(run: RunFolder) -> bool:
    """Whether checkpoint.pt says why training ended (written with its OOD description and
    temperatures once the last epoch is done)."""
    from cxr_attention.core.models.checkpoint import read_checkpoint_data

    try:
        training = read_checkpoint_data(run.checkpoint).get("training") or {}
    except CxrError:
        return False
    return training.get("stopped") is not None


def _finalise_only(
    config: FitConfig,
    run: RunFolder,
    progress: Progress,
    context: ddp.DistContext,
    report: Reporter,
) -> RunFolder:
    """A run stopped after its last epoch but before `finalise_checkpoint`: finish it now."""
    report.info(
        "%s trained all %d epochs but stopped before its OOD description and temperatures were "
        "fitted: fitting them now",
        run.path,
        progress.epoch,
    )
    data = prepare_data(config, context)
    stopped = "early_stopping" if progress.patience_spent(config.patience) else "epochs"
    if context.is_main:
        finalise_checkpoint(run, config, data, progress, stopped)
    ddp.barrier(context)
    return run


def _train_epochs(
    config: FitConfig,
    run: RunFolder,
    data: TrainingData,
    parts: StepParts,
    progress: Progress,
    context: ddp.DistContext,
    report: Reporter,
    watch: EpochWatch | None,
) -> str | None:
    """Epochs from the one after `progress.epoch`; returns why training ended ("epochs",
    "early_stopping") or None when `stop_after` paused it. `watch` (rank 0) records each epoch's
    timeline maps and TensorBoard events."""
    last = config.epochs if config.stop_after is None else min(config.epochs, config.stop_after)
    bar = report.epochs(progress.epoch + 1, config.epochs)
    try:
        for epoch in range(progress.epoch + 1, last + 1):
            started = time.perf_counter()
            # the shuffle depends on (seed, epoch) alone
            batches = epoch_batches(data.train_loader, data.train_sampler, epoch, data.passes)
            trained = train_one_epoch(
                parts, batches, data.train_batches, context, report, f"epoch {epoch}"
            )
            if not math.isfinite(trained.loss) and not parts.scaler.is_enabled():
                # (with fp16 the scaler skips overflowing steps, so a non-finite mean may pass)
                raise RunError(
                    f"training diverged: the loss is {trained.loss} in epoch {epoch}; start again "
                    "with a lower --lr (and --clip-grad on) in a new --out"
                )
            val = validate(parts, data.val_loader, data.val_batches, context, report)
            improved = progress.record(epoch, val.macro_auc)
            record = EpochRecord(
                epoch=epoch,
                train_loss=trained.loss,
                val_loss=val.loss,
                val_macro_auc=val.macro_auc,
                val_micro_auc=val.micro_auc,
                lr=parts.schedule.lr,
                seconds=time.perf_counter() - started,
                images_per_s=trained.images / max(trained.seconds, 1e-9),
            )
            _save_epoch(config, run, data, parts, progress, context, record, val, improved)
            if watch is not None:
                watch.after_epoch(ddp.unwrap(parts.model), record)
            bar.set_postfix(val_macro_auc=f"{val.macro_auc:.3f}", refresh=False)
            bar.update(1)
            _log_epoch(report, config, record, improved)
            if progress.patience_spent(config.patience):
                report.info(
                    "early stopping: no better val macro AUC for %d epochs (best %.3f, epoch %d)",
                    config.patience,
                    progress.best_val_macro_auc,
                    progress.best_epoch,
                )
                return "early_stopping"
    finally:
        bar.close()
    return "epochs" if progress.epoch >= config.epochs else None


def _save_epoch(
    config: FitConfig,
    run: RunFolder,
    data: TrainingData,
    parts: StepParts,
    progress: Progress,
    context: ddp.DistContext,
    record: EpochRecord,
    val: ValResult,
    improved: bool,
) -> None:
    """history.csv, checkpoint.pt when best, then last.pt (last, so a kill before it repeats the
    epoch rather than skipping it)."""
    model = ddp.unwrap(parts.model)
    if improved:
        # Operating points come from validation, never from test; the checkpoint carries them.
        labels = parts.model_config.labels
        progress.best_thresholds = choose_thresholds(val.targets, val.probabilities, labels)
    # Every rank's generator state, so a resumed job continues each rank's random stream.
    rng_per_rank = ddp.gather_objects(capture_rng(), context)
    if not context.is_main:
        return
    append_history(run.path / HISTORY, record)
    if improved:
        save_checkpoint(run.checkpoint, model, training_summary(config, data, progress))
    save_train_state(
        run.last_checkpoint,
        train_state(
            config, model, parts.optimizer, parts.schedule, parts.scaler, progress, rng_per_rank
        ),
    )


def _log_epoch(report: Reporter, config: FitConfig, record: EpochRecord, improved: bool) -> None:
    report.info(
        "epoch %d/%d  train loss %.4f  val loss %.4f  val AUC macro %.3f micro %.3f  "
        "%.0f img/s  %.0f s%s",
        record.epoch,
        config.epochs,
        record.train_loss,
        record.val_loss,
        record.val_macro_auc,
        record.val_micro_auc,
        record.images_per_s,
        record.seconds,
        "  (best)" if improved else "",
    )


def _lr_note(config: FitConfig) -> str:
    """Why this learning rate, when it is a default the user may not expect."""
    if config.lr != config.default_lr:
        return ""
    if config.pretrained is None:
        return " (the from-scratch default: no --pretrained weights)"
    if starts_from_project_model(config.pretrained):
        return " (the default from a cxr-attention model: its features adapt at this rate)"
    return " (the fine-tuning default for --pretrained weights)"


def _wrap(model: torch.nn.Module, plan: DevicePlan, context: ddp.DistContext) -> torch.nn.Module:
    """DistributedDataParallel under torchrun, the model itself otherwise."""
    if not context.is_distributed:
        return model
    device_ids = [plan.device.index] if plan.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
