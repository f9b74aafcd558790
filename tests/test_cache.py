"""The uint8 image cache: exact round trip, staleness, unreadable images, the `cache` command."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest

from cxr_attention.core.data.cache import (
    DATA_FILE,
    INDEX_FILE,
    PREPROCESSING_VERSION,
    build_cache,
    cache_folder,
    find_cache,
)
from cxr_attention.core.data.index import DatasetWarning
from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import DatasetError
from cxr_attention.train.cli import main
from tests.test_chestxray14 import make_tree, open_quietly, synthetic_film


@pytest.fixture
def tree(tmp_path):
    root = make_tree(tmp_path / "data", layout="nested", size=48)
    # One landscape film, so the padding to a square is part of the round trip.
    cv2.imwrite(
        str(root / "images_001" / "images" / "00000002_000.png"), synthetic_film("w", 64)[:40]
    )
    return root


def test_cache_rows_equal_direct_preprocessing_exactly(tree):
    index = open_quietly(tree)
    cache = build_cache(index, 32, workers=2, progress=False)
    assert cache.array.shape == (len(index.items), 32, 32) and cache.array.dtype == np.uint8
    for image_id, path in zip(index.items["image_id"], index.items["path"], strict=True):
        direct = model_view(load_radiograph(path).pixels, 32)
        np.testing.assert_array_equal(cache.read(cache.rows([image_id]))[0], direct)
    # The RGBA film and the padded landscape film are in there, not black.
    rows = cache.rows(["00000004_001.png", "00000002_000.png"])
    assert cache.read(rows).reshape(2, -1).max(axis=1).min() > 100
    assert cache.read(rows)[1, :4].max() == 0  # black padding above the landscape film


def test_parallel_and_single_process_builds_are_identical(tree):
    index = open_quietly(tree)
    parallel = build_cache(index, 40, workers=2, progress=False).array.copy()
    single = build_cache(index, 40, workers=1, force=True, progress=False).array
    np.testing.assert_array_equal(parallel, single)


def test_index_records_ids_fingerprint_size_and_version(tree):
    index = open_quietly(tree)
    build_cache(index, 32, workers=1, progress=False)
    folder = cache_folder(tree, 32)
    assert folder == tree / ".cxr-cache" / "32"
    record = json.loads((folder / INDEX_FILE).read_text())
    assert record["image_ids"] == index.items["image_id"].tolist()
    assert record["fingerprint"] == index.fingerprint and record["size"] == 32
    assert record["preprocessing_version"] == PREPROCESSING_VERSION
    assert (folder / DATA_FILE).stat().st_size == len(index.items) * 32 * 32
    assert not list(folder.glob("*.partial-*"))


def test_find_cache_uses_only_a_matching_cache(tree):
    index = open_quietly(tree)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cache yet is not worth a warning
        assert find_cache(index, 32) is None
    built = build_cache(index, 32, workers=1, progress=False)
    found = find_cache(index, 32)
    assert found is not None and found.image_ids == built.image_ids
    assert find_cache(index, 48) is None  # another size is another cache
    # Replace one image: the folder's fingerprint changes and the cache is stale.
    cv2.imwrite(str(tree / "images_001" / "images" / "00000001_000.png"), synthetic_film("x", 56))
    changed = open_quietly(tree)
    with pytest.warns(DatasetWarning, match="stale.*cxr-attention cache"):
        assert find_cache(changed, 32) is None
    rebuilt = build_cache(changed, 32, workers=1, progress=False)
    assert rebuilt.fingerprint == changed.files_fingerprint
    assert find_cache(changed, 32).fingerprint == rebuilt.fingerprint  # the rebuilt one is used
    fresh = model_view(
        load_radiograph(tree / "images_001" / "images" / "00000001_000.png").pixels, 32
    )
    np.testing.assert_array_equal(rebuilt.read(rebuilt.rows(["00000001_000.png"]))[0], fresh)


def test_a_phantom_cache_follows_its_files_not_only_its_fingerprint(tmp_path):
    """A phantom's fingerprint names what made it; its cache must still see a film replaced."""
    from cxr_attention.core.data.phantom import generate_phantom

    root = tmp_path / "phantom"
    generate_phantom(root, n=20, size=64, seed=0, workers=1)
    index = open_quietly(root)
    build_cache(index, 32, workers=1, progress=False)
    record = json.loads((cache_folder(root, 32) / INDEX_FILE).read_text())
    assert (record["fingerprint"], record["files"]) == (index.fingerprint, index.files_fingerprint)
    film = root / "images" / index.items["image_id"].iloc[0]
    cv2.imwrite(str(film), synthetic_film("replaced", 64))
    changed = open_quietly(root)
    assert changed.fingerprint == index.fingerprint
    with pytest.warns(DatasetWarning, match="stale"):
        assert find_cache(changed, 32) is None


def test_an_up_to_date_cache_is_not_rebuilt_unless_forced(tree):
    index = open_quietly(tree)
    build_cache(index, 32, workers=1, progress=False)
    data = cache_folder(tree, 32) / DATA_FILE
    inode = data.stat().st_ino
    build_cache(index, 32, workers=1, progress=False)
    assert data.stat().st_ino == inode
    build_cache(index, 32, workers=1, force=True, progress=False)
    assert data.stat().st_ino != inode


def test_damaged_cache_is_ignored_with_a_message(tree):
    index = open_quietly(tree)
    build_cache(index, 32, workers=1, progress=False)
    data = cache_folder(tree, 32) / DATA_FILE
    data.write_bytes(data.read_bytes()[:100])
    with pytest.warns(DatasetWarning, match="truncated"):
        assert find_cache(index, 32) is None


def test_unreadable_images_are_skipped_with_one_summary_warning(tree):
    (tree / "images_001" / "images" / "00000001_001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (tree / "images_002" / "images" / "00000005_000.png").write_bytes(b"")
    index = open_quietly(tree)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = build_cache(index, 32, workers=2, progress=False)
    summaries = [w for w in caught if issubclass(w.category, DatasetWarning)]
    assert len(summaries) == 1
    assert str(summaries[0].message).startswith(f"2 of {len(index.items)} images could not be read")
    assert sorted(cache.unreadable) == ["00000001_001.png", "00000005_000.png"]
    assert "empty" in cache.unreadable["00000005_000.png"]
    assert cache.rows(["00000001_001.png", "00000001_000.png"]).tolist()[0] == -1
    assert cache.rows(["00000001_000.png"])[0] >= 0
    # Known-unreadable images count as covered: the cache is still used.
    used = find_cache(index, 32)
    assert used.fingerprint == cache.fingerprint and sorted(used.unreadable) == sorted(
        cache.unreadable
    )


def test_an_unwritable_folder_is_a_clear_error(tree):
    index = open_quietly(tree)
    (tree / ".cxr-cache").write_text("a file where the cache folder should be")
    with pytest.raises(DatasetError, match="cannot write"):
        build_cache(index, 32, workers=1, progress=False)


def test_pickled_cache_reopens_the_file_instead_of_copying_it(tree):
    index = open_quietly(tree)
    cache = build_cache(index, 48, workers=1, progress=False)
    before = cache.read([3, 0]).copy()
    blob = pickle.dumps(cache)
    assert len(blob) < 10_000 < cache.array.nbytes
    np.testing.assert_array_equal(pickle.loads(blob).read([3, 0]), before)


def test_cache_command_builds_then_reports_up_to_date(tree, capsys):
    assert main(["cache", str(tree), "--size", "32", "--workers", "1", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "cached 15 images at 32 px" in out and str(cache_folder(tree, 32)) in out
    assert "ages over 120" in err  # dataset warnings come out as one line each
    assert main(["cache", str(tree), "--size", "32", "--no-progress"]) == 0
    assert "cache up to date: 15 images" in capsys.readouterr().out
    cv2.imwrite(str(tree / "images_001" / "images" / "00000001_000.png"), synthetic_film("y", 40))
    assert main(["cache", str(tree), "--size", "32", "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rebuilding the cache: it is stale" in out and "cached 15 images" in out
    assert main(["cache", str(tree / "missing"), "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cxr-attention cache: error:") and err.count("\n") == 1
    assert main(["cache", str(tree), "--size", "8"]) == 2
    assert "at least 32" in capsys.readouterr().err


def test_cache_command_through_the_console_script(tree):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cxr_attention.train.cli",
            "cache",
            str(tree),
            "--size",
            "32",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "cached 15 images at 32 px" in done.stdout
    assert "Traceback" not in done.stderr
