"""RadiographAugment: range and shape kept, identity at zero strength, seeded, no flip by default."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cxr_attention.core.data.augment import RadiographAugment

SIZE = 48


def films(n: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 1, S, S) float films in [0, 1]: a smooth background and a bright blob on the left."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    blob = (((x - SIZE * 0.25) ** 2 + (y - SIZE * 0.5) ** 2) < (SIZE * 0.1) ** 2).float()
    base = 0.2 + 0.3 * torch.rand(n, 1, 1, 1, generator=g) * (y / SIZE)
    return (base + 0.5 * blob).clamp(0, 1)


def centre_of_mass_x(batch: torch.Tensor) -> torch.Tensor:
    """Horizontal centre of the bright pixels, as a fraction of the width, per image."""
    bright = (batch > 0.65).float()
    x = torch.arange(SIZE, dtype=torch.float32).view(1, 1, 1, -1)
    return (bright * x).sum(dim=(1, 2, 3)) / bright.sum(dim=(1, 2, 3)).clamp(min=1) / SIZE


def test_shape_dtype_device_and_range_are_kept():
    augment = RadiographAugment(brightness=0.4, contrast=0.4)
    x = films()
    out = augment(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device == x.device
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, x)
    as_uint8 = augment(
        (x * 255).round().to(torch.uint8), generator=torch.Generator().manual_seed(0)
    )
    assert as_uint8.dtype == torch.float32 and as_uint8.max() <= 1.0
    with pytest.raises(ValueError, match=r"B, 1 or 2, S, S"):
        augment(x[:, 0])


def test_identity_at_zero_strength_and_in_eval_mode():
    x = films()
    off = RadiographAugment(scale=(1.0, 1.0), max_rotation_deg=0, brightness=0, contrast=0)
    assert torch.equal(off(x), x)
    assert torch.equal(off((x * 255).to(torch.uint8)), (x * 255).to(torch.uint8).float() / 255)
    full = RadiographAugment().eval()
    assert torch.equal(full(x), x)


def test_a_seeded_generator_gives_the_same_batch_and_seeds_differ():
    augment = RadiographAugment()
    x = films()
    first = augment(x, generator=torch.Generator().manual_seed(7))
    again = augment(x, generator=torch.Generator().manual_seed(7))
    other = augment(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    # Each image of the batch gets its own parameters.
    same_input = x[:1].expand(8, -1, -1, -1).contiguous()
    out = augment(same_input, generator=torch.Generator().manual_seed(0))
    assert (out - out[:1]).abs().flatten(1).amax(dim=1)[1:].min() > 0.01


def test_no_horizontal_flip_by_default_the_heart_stays_on_its_side():
    x = films(64)
    before = centre_of_mass_x(x)
    assert (before - 0.25).abs().max() < 0.02
    after = centre_of_mass_x(RadiographAugment()(x, generator=torch.Generator().manual_seed(1)))
    assert after.max() < 0.4  # crop and rotation move it a little, never across the midline
    flipped = centre_of_mass_x(
        RadiographAugment(hflip=True)(x, generator=torch.Generator().manual_seed(1))
    )
    n_right = int((flipped > 0.6).sum())
    assert 16 < n_right < 48  # about half the films are mirrored when asked


def test_brightness_shifts_and_contrast_scales_around_the_mean():
    x = films(8) * 0.5 + 0.25  # room on both sides, so nothing is clipped
    shift = RadiographAugment(scale=(1.0, 1.0), max_rotation_deg=0, brightness=0.1, contrast=0)
    delta = shift(x, generator=torch.Generator().manual_seed(2)) - x
    per_image = delta.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-6)
    assert per_image[:, 0].abs().max() <= 0.1 and per_image[:, 0].abs().max() > 0.02
    stretch = RadiographAugment(scale=(1.0, 1.0), max_rotation_deg=0, brightness=0, contrast=0.1)
    out = stretch(x, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    ratio = out.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert ((ratio > 0.9 - 1e-5) & (ratio < 1.1 + 1e-5)).all() and (ratio - 1).abs().max() > 0.01


def test_crop_zooms_in_and_rotation_is_mild():
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    disc = (((x - SIZE / 2 + 0.5) ** 2 + (y - SIZE / 2 + 0.5) ** 2) < (SIZE * 0.15) ** 2).float()
    x = disc.expand(32, 1, -1, -1)
    zoom = RadiographAugment(scale=(0.5, 0.5), max_rotation_deg=0, brightness=0, contrast=0)
    out = zoom(x, generator=torch.Generator().manual_seed(3))
    # Half the area -> a central disc (always inside the crop) covers about 2x the pixels.
    grown = (out > 0.5).float().sum(dim=(1, 2, 3)) / (x > 0.5).float().sum(dim=(1, 2, 3))
    assert ((grown > 1.6) & (grown < 2.4)).all()
    square = torch.zeros(1, 1, SIZE, SIZE)
    square[..., 8:-8, 8:-8] = 1.0
    turned = RadiographAugment(scale=(1.0, 1.0), max_rotation_deg=7, brightness=0, contrast=0)
    rotated = turned(square.expand(16, -1, -1, -1), generator=torch.Generator().manual_seed(4))
    # A 7 degree turn of a 32 px square moves its corners by at most ~3 px.
    changed = (rotated - square).abs() > 0.5
    assert changed.flatten(1).sum(dim=1).max() < 0.2 * 32 * 32


def test_one_warp_per_batch(monkeypatch):
    calls = []
    original = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "grid_sample", counting)
    RadiographAugment()(films(32), generator=torch.Generator().manual_seed(0))
    assert calls == [32]


def test_max_shift_moves_the_chest_by_up_to_that_share_of_the_film():
    size = 64
    film = torch.zeros(256, 1, size, size)
    film[:, :, 30:34, 30:34] = 1.0  # a bright square at the centre
    plain = RadiographAugment(scale=(1.0, 1.0), max_rotation_deg=0, brightness=0, contrast=0)
    moving = RadiographAugment(
        scale=(1.0, 1.0), max_rotation_deg=0, brightness=0, contrast=0, max_shift=0.25
    )
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(plain.train()(film, generator=generator), film)  # nothing moves

    out = moving.train()(film, generator=torch.Generator().manual_seed(0))
    rows = torch.arange(size, dtype=torch.float32).view(1, size, 1)
    mass = out[:, 0].sum(dim=(1, 2)).clamp_min(1e-6)
    cy = (out[:, 0] * rows).sum(dim=(1, 2)) / mass
    cx = (out[:, 0] * rows.transpose(1, 2)).sum(dim=(1, 2)) / mass
    shift = torch.maximum((cy - 31.5).abs(), (cx - 31.5).abs()) / size
    assert shift.max() <= 0.25 + 1 / size  # never more than a quarter of the film
    assert shift.max() >= 0.2 and (shift > 0.1).float().mean() >= 0.4  # and often far
    with pytest.raises(ValueError, match="max_shift"):
        RadiographAugment(max_shift=0.6)
