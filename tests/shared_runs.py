"""What several test modules need and is costly to make, made once per test session.

The suite runs its modules on two xdist workers, each its own process: a session fixture alone
would still draw or train once per worker. `built_once` builds a folder in the session's own
temporary folder (shared by the workers) under a file lock, so the worker that comes second waits
for the first one's folder instead of building its own. Callers copy what they will write into.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DONE = ".built"


def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test session's temporary folder, the same for every xdist worker."""
    base = tmp_path_factory.getbasetemp()
    # a worker's basetemp is SESSION/popen-gwN; without xdist it is SESSION itself
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """SESSION/shared/`name`, made by `build(folder)` the first time any worker asks for it."""
    shared = session_root(tmp_path_factory) / "shared"
    shared.mkdir(exist_ok=True)
    folder = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / DONE).exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
            build(folder)
            (folder / DONE).touch()
    return folder


def phantom_copy(
    tmp_path_factory: pytest.TempPathFactory, dest: Path, n: int, size: int, seed: int
) -> Path:
    """`generate_phantom(dest, n, size, seed)`: the same films, drawn once per session for all the
    modules that ask for these arguments, then copied (a test may write beside them)."""
    from cxr_attention.core.data.phantom import generate_phantom

    def draw(folder: Path) -> None:
        generate_phantom(folder, n=n, size=size, seed=seed, workers=1)

    source = built_once(tmp_path_factory, f"phantom-{n}-{size}-{seed}", draw)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(DONE))
    return dest


@dataclass(frozen=True)
class TrainedRun:
    run: Path  # a run folder: checkpoint.pt, config.json, history.csv, ...
    data: Path  # the phantom it learnt (read-only: every copy of the run reads it)

    def copy_to(self, dest: Path) -> Path:
        """The run folder copied to `dest` (scoring writes its results into the run folder)."""
        shutil.copytree(self.run, dest, ignore=shutil.ignore_patterns(DONE))
        return dest


# The class-specific head's recipe scaled down (tests/test_class_attention.py says why each figure):
# timm's 0.4 M-parameter `test_resnet` at 96 px with output stride 8 (12 x 12 maps), CSRA pooled
# with T = 99 and lambda 0.3 (a label's logit depends on the map's peak), 6 epochs, through `fit`'s
# own flags.
CLASS_RUN_SIZE = 96
CLASS_RUN_FLAGS = (
    "--backbone", "test_resnet", "--attention-kind", "class", "--output-stride", "8",
    "--attention-temperature", "99", "--attention-lambda", "0.3", "--labels", "paper13",
    "--image-size", str(CLASS_RUN_SIZE), "--epochs", "6", "--batch-size", "32", "--lr", "5e-3",
    "--warmup-epochs", "0.5", "--val-fraction", "0.25", "--seed", "0", "--workers", "0",
    "--threads", "1", "--no-progress",
)  # fmt: skip


def trained_class_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """A class-specific head (CSRA) trained for real by `cxr-attention fit` with CLASS_RUN_FLAGS on
    an 800-film phantom at 96 px (seed 0; fit reads its 650 train/val films, the 150 test films
    are unseen): the trained model of tests/test_class_attention.py, tests/test_localization.py
    and tests/test_study.py."""
    from cxr_attention.core.data.phantom import generate_phantom
    from cxr_attention.train.cli import main

    def train(folder: Path) -> None:
        data = folder / "phantom"
        generate_phantom(data, n=800, size=CLASS_RUN_SIZE, seed=0, workers=1)
        argv = ["fit", "--data", str(data), *CLASS_RUN_FLAGS]
        if main([*argv, "--out", str(folder / "test_resnet+class")]) != 0:
            raise RuntimeError(f"the session's class run failed: {' '.join(argv)}")

    folder = built_once(tmp_path_factory, "trained-class-run", train)
    return TrainedRun(folder / "test_resnet+class", folder / "phantom")
