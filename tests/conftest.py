"""Suite-wide settings for parallel runs (pytest-xdist, one worker per core; see pyproject.toml).

- Each worker computes with one thread, and so do the commands its tests start (OMP_NUM_THREADS):
  two workers with two threads each on two cores spend their time waiting for each other.
- Streamlit's AppTest leaves `__main__` pointing at app/main.py; a process spawned after it (the
  phantom's, the cache's and the loader's workers) would then import the whole app first, seconds
  per worker. Each test gets the `__main__` it started with back.
- Costly things several modules need (a trained phantom model) are made once per session, also
  across workers (tests/shared_runs.py).
- The slowest modules are handed out first (xdist's `--no-loadscope-reorder` keeps this order), so
  that no worker is left with a long module at the end while the other idles. The order comes
  from `pytest --durations=0` on a 2-core machine; a module not listed follows in the usual order.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Iterator

import pytest
import torch

from tests import shared_runs

SLOWEST_FIRST = (  # seconds in `.ci/run` (2 workers on 2 cores, 2026-12-07; the module's slowest)
    "test_class_attention.py",  # 66: a class head learns to point at lesions
    "test_browser.py",  # 63: the app in Chromium, three times
    "test_lung_training.py",  # 43: class runs with and without the lung term, a masked run
    "test_demo.py",  # 37: three variants, --only, --refit-trust, the study
    "test_training.py",  # 35
    "test_real_films.py",  # 34: a short training on real films
    # ~28 and ~27: 51 and 23 scaled by `-n 0` runs before and after (their fixtures shrank or
    # moved to tests/shared_runs.py); test_localization trains the session's class model
    "test_mixed_precision.py",  # eight fine-tuning runs in fp32 and bf16
    "test_localization.py",
    "test_zoo.py",  # 23: the shipped zoo on a fresh phantom
    "test_lungs.py",  # 22: a segmenter learns the phantom's lungs
    "test_zoos.py",  # 19: a tiny films zoo made, installed
    "test_resume.py",  # 18
    "test_distributed.py",  # 18: torchrun with two processes
    "test_sweep.py",  # 14
    "test_app_lungs.py",  # 13: real-film-like runs evaluated and studied, then the pages
    "test_finetune.py",  # 10
    "test_ood.py",  # 12
    "test_progress.py",  # 9
    # ~5 once test_localization (handed out well before) has trained the session's class model
    "test_study.py",
    "test_app.py",
    "test_real_zoo.py",
    "test_cli.py",
    "test_localize_cli.py",
    "test_equivariance.py",
    "test_checkpoint.py",
    "test_evaluation.py",
    "test_compare.py",
    "test_imagenet.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FIRST)))  # stable
    if not torch.cuda.is_available():
        no_gpu = pytest.mark.skip(reason="needs a CUDA GPU (run with -m cuda on one)")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(no_gpu)


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def trained_class_run(tmp_path_factory) -> shared_runs.TrainedRun:
    """One class-specific phantom model trained for real, for every module that scores one."""
    return shared_runs.trained_class_run(tmp_path_factory)


@pytest.fixture
def no_network(monkeypatch) -> list[object]:
    """Refuse every outgoing connection the code under test tries, as a machine without a
    network would at once, and keep the address of each try: a test asserts the list is empty
    (nothing was asked of the network, so nothing could be waited for)."""
    attempts: list[object] = []

    def refused(address: object) -> ConnectionRefusedError:
        attempts.append(address)
        return ConnectionRefusedError(errno.ECONNREFUSED, f"test without network: {address}")

    def connect(_sock: socket.socket, address: object) -> None:
        raise refused(address)

    def connect_ex(_sock: socket.socket, address: object) -> int:
        return refused(address).errno

    def create_connection(address: object, *_args: object, **_kwargs: object) -> socket.socket:
        raise refused(address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempts
