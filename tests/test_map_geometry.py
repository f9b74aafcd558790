"""Maps are drawn where their features look: a stride-s feature cell j is centred on input pixel
s * j (symmetric padding), so an upsampled map must peak there, not half a cell down and right."""

from __future__ import annotations

import pytest
import torch

from cxr_attention.core.explain.base import upsample
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig

SIZE = 128


def receptive_centre(backbone: str, head_stage: int, cell: tuple[int, int]) -> tuple[float, float]:
    """Where one cell of a class head's map looks in the input: the centroid of the magnitude of
    its gradient with respect to the pixels, on a randomly initialised network."""
    torch.manual_seed(0)
    config = ModelConfig(
        backbone=backbone,
        labels=("Mass", "Nodule"),
        attention=True,
        attention_kind="class",
        head_stage=head_stage,
        image_size=SIZE,
    )
    model = AttentionClassifier(config).eval()
    x = torch.randn(1, 3, SIZE, SIZE, requires_grad=True)
    maps = model.forward_with_maps(x).maps["class"]
    (grad,) = torch.autograd.grad(maps[0, :, cell[0], cell[1]].sum(), x)
    weight = grad.abs().sum(1)[0]
    rows = torch.arange(SIZE, dtype=torch.float32)
    return (
        float((weight.sum(1) * rows).sum() / weight.sum()),
        float((weight.sum(0) * rows).sum() / weight.sum()),
    )


@pytest.mark.parametrize(
    ("backbone", "head_stage"), [("mobilenetv2_100", -3), ("efficientnet_b0", -3)]
)
def test_an_upsampled_cell_peaks_where_its_features_look(backbone, head_stage):
    cells = 16  # stage 2 at 128 px: stride 8
    cell = (5, 10)
    centre = receptive_centre(backbone, head_stage, cell)
    one_hot = torch.zeros(1, 1, cells, cells)
    one_hot[0, 0, cell[0], cell[1]] = 1.0
    heat = upsample(one_hot, (SIZE, SIZE))[0, 0]
    peak = divmod(int(heat.argmax()), SIZE)
    assert peak == (40, 80)  # 8 x 5, 8 x 10
    # the features of that cell look there, within a pixel or two (one random network's
    # gradients); resizing's placement, 3.5 px down and right, is farther in both directions
    for ours, looked in zip(peak, centre, strict=True):
        assert abs(ours - looked) <= 1.5
        assert abs(ours + 3.5 - looked) > abs(ours - looked) + 1.0


def test_upsampling_keeps_values_in_range_and_clamps_past_the_last_centre():
    coarse = torch.tensor([[[[0.0, 1.0], [0.5, 0.25]]]])
    heat = upsample(coarse, (4, 4))[0, 0]
    # cell centres at pixels 0 and 2; pixel 1 halfway between, pixel 3 past the last centre
    assert heat[0].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0])
    assert heat[:, 0].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.5])
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    flat = upsample(torch.full((2, 3, 1, 1), 0.3), (5, 7))
    assert flat.shape == (2, 3, 5, 7) and torch.allclose(flat, torch.full_like(flat, 0.3))
