"""Run discovery follows symbolic links (runs kept on a data disk and linked into a runs folder).

One real run is copied into the runs folder and one is linked from elsewhere; the app's registry,
`compare` and `find_runs` must see both, once each, and a link cycle must not hang the walk.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from cxr_attention.core.labels import ALL14
from cxr_attention.core.runs import CHECKPOINT, find_runs


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """One real (untrained, 64 px) MobileNetV2 checkpoint that the app's registry can read."""
    from cxr_attention.core.models.checkpoint import save_checkpoint
    from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig

    torch.manual_seed(0)
    model = AttentionClassifier(
        ModelConfig("mobilenetv2_100", ALL14, attention=True, image_size=64)
    )
    training = {"epochs": 1, "best_val_macro_auc": 0.5, "data": {"source": "phantom"}}
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / CHECKPOINT, model, training)


def _run(folder: Path, checkpoint: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(checkpoint, folder / CHECKPOINT)
    return folder


@pytest.fixture
def layout(tmp_path, checkpoint) -> Path:
    """runs/copied (a folder), runs/linked -> disk/kept, runs/loop -> runs (a cycle)."""
    runs = tmp_path / "runs"
    _run(runs / "copied", checkpoint)
    kept = _run(tmp_path / "disk" / "kept", checkpoint)
    (runs / "linked").symlink_to(kept, target_is_directory=True)
    (runs / "loop").symlink_to(runs, target_is_directory=True)
    return runs


def test_find_runs_follows_links_once_each(layout):
    found = [run.path for run in find_runs(layout)]
    assert found == [layout / "copied", layout / "linked"]


def test_a_runs_folder_of_links_only(tmp_path, layout):
    only_links = tmp_path / "only-links"
    only_links.mkdir()
    for name in ("copied", "linked"):
        (only_links / name).symlink_to(layout / name, target_is_directory=True)
    (only_links / "again").symlink_to(layout / "copied", target_is_directory=True)
    assert [run.name for run in find_runs(only_links)] == ["again", "linked"]
    # the runs folder itself may be a link
    (tmp_path / "alias").symlink_to(layout, target_is_directory=True)
    assert [run.name for run in find_runs(tmp_path / "alias")] == ["copied", "linked"]


def test_the_app_lists_linked_models(layout):
    from cxr_attention.app.registry import runs_signature, scan_runs

    registry = scan_runs(layout)
    assert [entry.name for entry in registry.entries] == ["copied", "linked"]
    assert not registry.broken
    assert len(runs_signature(layout)) == 2


def test_compare_expands_a_folder_of_linked_runs(layout):
    from cxr_attention.train.commands.compare import expand_runs

    assert expand_runs([str(layout)]) == [layout / "copied", layout / "linked"]
    assert expand_runs([str(layout / "linked")]) == [layout / "linked"]
