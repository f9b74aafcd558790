"""Data-parallel training under `torchrun`: one process per GPU (or per CPU slot), any number of nodes.

`torchrun` tells each process its place through environment variables (RANK, WORLD_SIZE,
LOCAL_RANK); a plain `python` start has none of them and runs as a world of one. NCCL joins CUDA
processes, gloo joins CPU processes (which is how the tests run two processes on a laptop).

Validation runs sharded: every process scores its share and `gather_predictions` reassembles the
whole split on every process, so all of them reach the same AUC and the same early-stopping decision.
`DistributedSampler` pads the last shard by repeating a few images; the dataset row index travels
with every prediction, and duplicates are dropped so each image counts exactly once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from cxr_attention.core.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int = 0  # 0 .. world_size - 1 across all nodes
    world_size: int = 1  # number of training processes
    local_rank: int = 0  # index on this node (selects the GPU)

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files, logs and shows progress."""
        return self.rank == 0


def detect_context(environ: dict[str, str] | None = None) -> DistContext:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK; a world of one when they are absent."""
    env = os.environ if environ is None else environ
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (start with torchrun)"
        ) from None
    if world_size > 1 and not {"MASTER_ADDR", "MASTER_PORT"} <= set(env):
        raise ConfigError(
            "WORLD_SIZE > 1 but MASTER_ADDR/MASTER_PORT are not set: start the job with torchrun"
        )
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank)


def start(context: DistContext, device: torch.device) -> bool:
    """Join the process group (NCCL for CUDA, gloo otherwise); True when this call created it."""
    if not context.is_distributed or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"backend": backend}
    if device.type == "cuda":
        kwargs["device_id"] = device
    dist.init_process_group(**kwargs)
    return True


def stop(created: bool) -> None:
    """Leave the process group if `start` created it."""
    if created and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    if context.is_distributed and dist.is_initialized():
        dist.barrier()


def _comm_device(device: torch.device) -> torch.device:
    # NCCL moves CUDA tensors only; gloo moves CPU tensors.
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def mean_across(value: float, count: int, context: DistContext, device: torch.device) -> float:
    """The count-weighted mean of a per-process average (e.g. the training loss)."""
    if not (context.is_distributed and dist.is_initialized()):
        return value
    packed = torch.tensor([value * count, float(count)], dtype=torch.float64)
    packed = packed.to(_comm_device(device))
    dist.all_reduce(packed)
    total, n = packed.tolist()
    return total / max(n, 1.0)


def sum_across(value: int, context: DistContext, device: torch.device) -> int:
    """The sum of a per-process count over all processes."""
    if not (context.is_distributed and dist.is_initialized()):
        return value
    packed = torch.tensor([value], dtype=torch.int64).to(_comm_device(device))
    dist.all_reduce(packed)
    return int(packed.item())


def gather_predictions(
    indices: torch.Tensor,
    logits: torch.Tensor,
    targets: torch.Tensor,
    context: DistContext,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every process's (row index (n,), logits (n, L), targets (n, L)) joined on every process.

    Rows come back sorted by dataset row index, each index once (the sampler's padding repeats
    some images on some processes).
    """
    if context.is_distributed and dist.is_initialized():
        indices, logits, targets = _all_gather_rows(indices, logits, targets, device)
    idx = indices.cpu().numpy().astype(np.int64)
    _, first = np.unique(idx, return_index=True)  # sorted unique indices, first occurrence
    return (
        idx[first],
        logits.float().cpu().numpy()[first],
        targets.float().cpu().numpy()[first],
    )


def _all_gather_rows(
    indices: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    comm = _comm_device(device)
    world = dist.get_world_size()
    # Shards may differ in length: gather the lengths, pad to the longest, gather, trim.
    n_local = torch.tensor([indices.shape[0]], dtype=torch.int64, device=comm)
    sizes = [torch.zeros_like(n_local) for _ in range(world)]
    dist.all_gather(sizes, n_local)
    lengths = [int(s.item()) for s in sizes]
    longest = max(lengths)
    packed = torch.cat(
        [indices.to(torch.float64).unsqueeze(1), logits.double(), targets.double()], dim=1
    ).to(comm)
    padded = torch.zeros((longest, packed.shape[1]), dtype=torch.float64, device=comm)
    padded[: packed.shape[0]] = packed
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    rows = torch.cat([part[:n] for part, n in zip(parts, lengths, strict=True)]).cpu()
    n_labels = logits.shape[1]
    return rows[:, 0].round().long(), rows[:, 1 : 1 + n_labels], rows[:, 1 + n_labels :]


def gather_objects(obj: Any, context: DistContext) -> list[Any]:
    """One picklable object from every process, in rank order (small things: RNG states)."""
    if not (context.is_distributed and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * context.world_size
    dist.all_gather_object(out, obj)
    return out


def share_buffers(model: torch.nn.Module, context: DistContext) -> None:
    """Give every process rank 0's buffers (batch-norm running statistics).

    DDP broadcasts buffers at the start of each training forward, but the last batch then updates
    each rank's copy with its own images; validation must use the statistics the checkpoint
    (written by rank 0) will hold.
    """
    if not (context.is_distributed and dist.is_initialized()):
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (itself otherwise)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
