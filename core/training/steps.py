"""Small collections: count a run in optimiser steps, not only in passes over the films.

A network learns from optimiser steps. On a small collection an epoch is a handful of them (714
training films at batch 32: 22 steps), so a run of a few epochs ends before the network has learnt
(docs/your-own-films.md measures it). With `min_steps`, an epoch on such a collection goes over
the training films several times, so that all the epochs together make at least `min_steps`
optimiser steps; validation, checkpoints, patience and the schedule still count epochs. A large
collection (already that many steps) is unchanged.

By default (`min_steps` None) the minimum is `MIN_STEPS` on a collection people hold (ChestX-ray14,
class folders, a CSV) and none on the phantom: a phantom is drawn at whatever size a run needs, and
its recipes (the README's tour, the demo zoo, the test suite) are set in passes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from torch.utils.data import DataLoader, DistributedSampler

from cxr_attention.core.training.optim import optimizer_steps_per_epoch

# Optimiser steps a run makes at least on a collection people hold, when not told otherwise:
# measured on real films of 100 to 5,216 (docs/your-own-films.md).
MIN_STEPS = 400


def resolved_min_steps(min_steps: int | None, source: str) -> int:
    """`min_steps` as given, or the default for a dataset of `source` (none on a phantom)."""
    if min_steps is not None:
        return min_steps
    return 0 if source == "phantom" else MIN_STEPS


def passes_per_epoch(min_steps: int, epochs: int, batches_per_pass: int, accumulate: int) -> int:
    """How many times an epoch goes over the training films: 1, or enough for `epochs` epochs
    to make at least `min_steps` optimiser steps (0: off)."""
    steps = optimizer_steps_per_epoch(batches_per_pass, accumulate) * epochs
    if min_steps <= 0 or steps >= min_steps:
        return 1
    return math.ceil(min_steps / max(steps, 1))


def epoch_batches(
    loader: DataLoader, sampler: DistributedSampler, epoch: int, passes: int
) -> Iterator:
    """The training batches of epoch `epoch` (1-based): `passes` shuffles of the training films
    in a row. Each pass's order depends on (seed, epoch, pass) alone, so a resumed run sees the
    order an uninterrupted one would; one pass a epoch is the order runs always had."""
    for p in range(passes):
        sampler.set_epoch(epoch * passes + p)
        yield from loader


def passes_line(passes: int, n_train: int, epochs: int, steps_per_epoch: int) -> str:
    """What a run says when its epochs go over the films more than once."""
    return (
        f"a small collection: each epoch goes {passes} times over the {n_train:,} training films, "
        f"so that {epochs} epochs make {epochs * steps_per_epoch:,} optimiser steps "
        "(--min-steps; 0: one pass an epoch)"
    )
