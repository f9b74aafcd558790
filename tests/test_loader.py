"""RadiographDataset and make_loader: the same samples from the cache and from the files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from cxr_attention.core.data.cache import build_cache
from cxr_attention.core.data.loader import RadiographDataset, make_loader
from cxr_attention.core.data.preprocess import model_view
from cxr_attention.core.data.radiograph import load_radiograph
from cxr_attention.core.errors import ConfigError
from tests.test_chestxray14 import make_tree, open_quietly

SIZE = 32


@pytest.fixture
def index(tmp_path):
    return open_quietly(make_tree(tmp_path / "data", size=48))


def test_samples_are_uint8_views_float_targets_and_row_indices(index):
    dataset = RadiographDataset(index.items, index.labels, SIZE)
    image, target, row = dataset[4]
    assert image.dtype == torch.uint8 and image.shape == (1, SIZE, SIZE)
    assert target.dtype == torch.float32 and target.shape == (len(index.labels),)
    assert row == 4
    direct = model_view(load_radiograph(index.items["path"][4]).pixels, SIZE)
    np.testing.assert_array_equal(image[0].numpy(), direct)
    np.testing.assert_array_equal(target.numpy(), index.targets(index.items)[4])


def test_cache_and_files_give_identical_samples_in_any_index_order(index):
    cache = build_cache(index, SIZE, workers=1, progress=False)
    cached = RadiographDataset(index.items, index.labels, SIZE, cache=cache)
    decoded = RadiographDataset(index.items, index.labels, SIZE)
    order = [7, 2, 11, 2, 0]  # unsorted, with a repeat: the batch keeps this order
    for (a_img, a_tgt, a_row), (b_img, b_tgt, b_row) in zip(
        cached.__getitems__(order), decoded.__getitems__(order), strict=True
    ):
        assert torch.equal(a_img, b_img) and torch.equal(a_tgt, b_tgt) and a_row == b_row
    assert [row for *_, row in cached.__getitems__(order)] == order


def test_rows_missing_from_the_cache_are_decoded_from_their_files(tmp_path):
    root = make_tree(tmp_path / "data", size=48)
    pa_only = open_quietly(root, views=("PA",))
    both = open_quietly(root)
    cache = build_cache(pa_only, SIZE, workers=1, progress=False)
    dataset = RadiographDataset(both.items, both.labels, SIZE, cache=cache)
    assert (dataset.cache_rows < 0).sum() == (both.items["view"] == "AP").sum() > 0
    images = dataset.read_images(np.arange(len(both.items)))
    for k, path in enumerate(both.items["path"]):
        np.testing.assert_array_equal(images[k], model_view(load_radiograph(path).pixels, SIZE))


def test_loader_batches_cover_every_sample_once_and_shuffle_is_seeded(index):
    cache = build_cache(index, SIZE, workers=1, progress=False)
    dataset = RadiographDataset(index.items, index.labels, SIZE, cache=cache)
    loader = make_loader(dataset, batch_size=4, shuffle=True, num_workers=0, seed=5)
    batches = list(loader)
    images, targets, rows = batches[0]
    assert images.shape == (4, 1, SIZE, SIZE) and images.dtype == torch.uint8
    assert targets.shape == (4, 14) and targets.dtype == torch.float32
    seen = torch.cat([batch[2] for batch in batches]).tolist()
    assert sorted(seen) == list(range(len(dataset))) and seen != sorted(seen)
    again = torch.cat([b[2] for b in make_loader(dataset, 4, True, num_workers=0, seed=5)])
    assert again.tolist() == seen
    for images, targets, rows in batches:
        np.testing.assert_array_equal(targets.numpy(), index.targets(index.items)[rows.numpy()])
        np.testing.assert_array_equal(
            images[:, 0].numpy(), cache.read(cache.rows(index.items["image_id"][rows.numpy()]))
        )


def test_worker_processes_give_the_same_batches(index):
    cache = build_cache(index, SIZE, workers=1, progress=False)
    dataset = RadiographDataset(index.items, index.labels, SIZE, cache=cache)
    inline = list(make_loader(dataset, batch_size=8, shuffle=False, num_workers=0))
    loader = make_loader(dataset, batch_size=8, shuffle=False, num_workers=2)
    assert loader.persistent_workers
    for (a, b, c), (x, y, z) in zip(inline, loader, strict=True):
        assert torch.equal(a, x) and torch.equal(b, y) and torch.equal(c, z)


def test_distributed_sampler_splits_the_data_between_ranks(index):
    dataset = RadiographDataset(index.items, index.labels, SIZE)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=1)
        loader = make_loader(dataset, batch_size=3, shuffle=True, sampler=sampler, num_workers=0)
        seen.append(torch.cat([rows for *_, rows in loader]).tolist())
    # 15 samples over 2 ranks: 8 each, the sampler repeats one sample to even them out.
    assert len(dataset) == 15 and len(seen[0]) == len(seen[1]) == 8
    assert len(set(seen[0]) & set(seen[1])) <= 1
    assert set(seen[0]) | set(seen[1]) == set(range(len(dataset)))


def test_mismatches_are_clear_errors(index):
    cache = build_cache(index, SIZE, workers=1, progress=False)
    with pytest.raises(ConfigError, match="cxr-attention cache DATA --size 64"):
        RadiographDataset(index.items, index.labels, 64, cache=cache)
    with pytest.raises(ConfigError, match="Hernia"):
        RadiographDataset(index.items.drop(columns=["Hernia"]), index.labels, SIZE)
