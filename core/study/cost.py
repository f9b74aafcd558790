"""What a mechanism costs: parameters, and CPU latency against the same backbone without attention.

The baseline is built here from the model's own configuration with attention off (same backbone,
labels, image size, channels and output stride), so the overhead is that of the mechanism alone;
what a finer output stride costs is measured in benchmarks/bench_map_resolution.py. Latency is the
median wall time of a forward pass of one image at the model's size, on the CPU, without gradients,
the two models timed alternately in the same process (so a neighbour's load falls on both). It is
a figure, not a guarantee: on a shared machine it moves by tens of percent between runs.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from cxr_attention.core.models.classifier import AttentionClassifier


@dataclass(frozen=True)
class ModelCost:
    """Parameters (counts) and latencies (milliseconds per image, batch 1, CPU)."""

    parameters: int  # the whole model
    attention_parameters: int  # in its attention modules (a class head counts whole)
    baseline_parameters: int  # the same backbone without attention
    latency_ms: float
    baseline_latency_ms: float
    repeats: int
    threads: int  # torch intra-op threads during the measurement
    image_size: int

    @property
    def latency_overhead(self) -> float:
        """Relative extra latency, (model - baseline) / baseline; 0.10 = 10 % slower."""
        return self.latency_ms / self.baseline_latency_ms - 1.0

    def as_json(self) -> dict:
        return {**dataclasses.asdict(self), "latency_overhead": self.latency_overhead}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    return (time.perf_counter() - start) * 1000.0


def measure_cost(model: AttentionClassifier, repeats: int = 7, warmup: int = 3) -> ModelCost:
    """Parameters and median CPU latency of `model` and of its backbone's baseline (see above).

    `model` is not changed (a CPU copy is timed when it lives elsewhere).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    config = model.config
    timed = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    timed.eval()
    if config.attention:
        baseline = AttentionClassifier(dataclasses.replace(config, attention=False)).eval()
    else:
        baseline = timed
    x = torch.zeros(1, config.in_chans, config.image_size, config.image_size)
    for _ in range(warmup):
        _once(timed, x)
        _once(baseline, x)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(_once(timed, x))
        theirs.append(_once(baseline, x) if baseline is not timed else ours[-1])
    return ModelCost(
        parameters=_count(timed),
        attention_parameters=timed.attention_parameters(),
        baseline_parameters=_count(baseline),
        latency_ms=float(np.median(ours)),
        baseline_latency_ms=float(np.median(theirs)),
        repeats=repeats,
        threads=torch.get_num_threads(),
        image_size=config.image_size,
    )
