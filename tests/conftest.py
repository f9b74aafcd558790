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
from threadpoolctl import threadpool_limits

from tests import shared_runs

SLOWEST_FIRST = (  # module worker-seconds, `--durations=0` on 2 cores (2026-12-07 afternoon)
    "test_class_attention.py",  # ~100: trains the session's class model (tests/shared_runs.py)
    "test_training.py",  # ~80
    "test_browser.py",  # ~66: the app in Chromium, twice, one server
    "test_lungs.py",  # ~55: a segmenter learns the phantom's lungs
    "test_mixed_precision.py",  # ~50: four fine-tuning runs in fp32 and bf16
    "test_lung_training.py",  # ~37: class runs with and without the lung term, a masked run
    "test_real_zoo.py",  # ~31: the seven shipped real-film models
    "test_app.py",  # ~31
    "test_demo.py",  # ~27: tiny zoos on test_resnet, --only, --refit-trust, the study
    "test_zoo.py",  # ~26: the shipped zoo on a fresh phantom
    "test_distributed.py",  # ~24: torchrun with two processes
    "test_app_lungs.py",  # ~24: real-film-like runs evaluated and studied, then the pages
    "test_real_films.py",  # ~20: a short training on real films
    "test_ood.py",  # ~20
    "test_finetune.py",  # ~17
    "test_resume.py",
    "test_localization.py",  # once the session's class model is trained
    "test_zoos.py",  # a tiny films zoo made, installed
    "test_evaluation.py",
    "test_sweep.py",
    "test_localize_cli.py",
    "test_predict.py",
    "test_progress.py",
    "test_study.py",  # the session's class model at 96 px and two untrained ones
    "test_small_collections.py",
    "test_cli.py",
    "test_phantom.py",
    "test_checkpoint.py",
    "test_equivariance.py",
)


def pytest_configure(config: pytest.Config) -> None:
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # read by the libraries loaded from now on
        torch.set_num_threads(1)
        # numpy's OpenBLAS was loaded with torch, above, before OMP_NUM_THREADS said 1: its two
        # threads spin while they wait on a busy machine (the OOD fits' covariances cost 4x the
        # CPU). threadpoolctl (the test extra; scikit-learn needs it too) sets every BLAS and OpenMP pool already
        # loaded to one thread.
        threadpool_limits(1)


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
