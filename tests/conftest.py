"""Suite-wide settings for parallel runs (pytest-xdist, one worker per core; see pyproject.toml).

- Each worker computes with one thread, and so do the commands its tests start (OMP_NUM_THREADS):
  two workers with two threads each on two cores spend their time waiting for each other.
- The slowest modules are handed out first (xdist's `--no-loadscope-reorder` keeps this order), so
  that no worker is left with a long module at the end while the other idles. The order comes
  from `pytest --durations=0` on a 2-core machine; a module not listed follows in the usual order.
"""

from __future__ import annotations

import os

import pytest
import torch

SLOWEST_FIRST = (  # seconds in a 2-worker run on 2 cores
    "test_browser.py",  # 42: the app in Chromium
    "test_zoo.py",  # 37: the shipped zoo on a fresh phantom
    "test_class_attention.py",  # 35: a class head learns to point at lesions
    "test_training.py",  # 30
    "test_demo.py",  # 50: three variants, --only, the study
    "test_study.py",  # 35
    "test_resume.py",  # 28: three trainings with a loader worker
    "test_localization.py",  # 25
    "test_sweep.py",  # 23
    "test_distributed.py",  # 19: torchrun with two processes
    "test_checkpoint.py",  # 18
    "test_app.py",  # 15
    "test_compare.py",  # 14
    "test_evaluation.py",  # 13
)


def pytest_configure(config: pytest.Config) -> None:
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FIRST)))  # stable
