"""The paper's backbones with and without spatial attention: build, forward, maps, ablation."""

import pytest
import torch

from core.errors import ConfigError, PretrainedWeightsError
from core.labels import ALL14, PAPER13
from core.models.attention import SpatialAttention
from core.models.classifier import AttentionClassifier, ModelConfig
from core.models.registry import PAPER_BACKBONES


def randomise_gates(model: AttentionClassifier, seed: int = 0) -> None:
    """Give the gates non-uniform maps (a fresh gate is exactly 0.5 everywhere by design)."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, SpatialAttention):
            with torch.no_grad():
                module.conv.weight.copy_(torch.randn(module.conv.weight.shape, generator=gen))
                module.bn.weight.fill_(1.0)


@pytest.mark.parametrize("backbone", list(PAPER_BACKBONES))
@pytest.mark.parametrize("attention", [False, True])
def test_paper_backbones_build_and_run(backbone, attention):
    config = ModelConfig(backbone, PAPER13, attention=attention, attention_stages=(-2, -1))
    model = AttentionClassifier(config).eval()
    with torch.no_grad():
        out = model.forward_with_maps(torch.randn(2, 3, 64, 64))
    assert out.logits.shape == (2, 13)
    assert torch.isfinite(out.logits).all()
    if attention:
        # 64 px input: stride 16 and 32 stages give 4x4 and 2x2 maps.
        assert {name: tuple(m.shape) for name, m in out.maps.items()} == {
            "stage3": (2, 1, 4, 4),
            "stage4": (2, 1, 2, 2),
        }
    else:
        assert out.maps == {}


def test_final_gate_sits_after_the_head_convolution_of_efficientnet():
    # timm's features_only stops at blocks.6 (320 channels); forward_features adds a 1x1 conv (1280).
    model = AttentionClassifier(ModelConfig("efficientnet_b0", ALL14, attention=True))
    assert model.final_attention is not None
    features = model.features(torch.randn(1, 3, 64, 64))
    assert features.shape[1] == 1280


def test_maps_lie_in_unit_interval_and_start_uniform():
    model = AttentionClassifier(ModelConfig("resnet101", ALL14, attention=True)).eval()
    with torch.no_grad():
        maps = model.forward_with_maps(torch.randn(1, 3, 96, 96)).maps
    # Batch-norm weight starts at 0, as in the CBAM reference: the gate is 0.5 everywhere.
    assert torch.allclose(maps["stage4"], torch.full_like(maps["stage4"], 0.5))
    randomise_gates(model)
    with torch.no_grad():
        m = model.forward_with_maps(torch.randn(1, 3, 96, 96)).maps["stage4"]
    assert 0.0 <= m.min() < m.max() <= 1.0


def test_spatial_attention_multiplies_features_by_its_map():
    gate = SpatialAttention(kernel_size=3).eval()
    with torch.no_grad():
        gate.conv.weight.normal_()
        gate.bn.weight.fill_(1.0)
    x = torch.randn(2, 8, 5, 5)
    x_before = x.clone()
    y = gate(x)
    pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
    expected_map = torch.sigmoid(
        gate.bn(torch.nn.functional.conv2d(pooled, gate.conv.weight, padding=1))
    )
    assert torch.allclose(y, x * expected_map)
    assert torch.equal(x, x_before)


def test_ablation_changes_logits_of_attention_model():
    model = AttentionClassifier(ModelConfig("mobilenetv2_100", ALL14, attention=True)).eval()
    randomise_gates(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        normal = model.forward_with_maps(x)
        ablated = model.forward_with_maps(x, ablate_attention=True)
        plain = model(x)
    assert torch.equal(normal.logits, plain)
    assert (normal.logits - ablated.logits).abs().max() > 1e-3
    # The maps are still reported when ablated, so a teacher can show what was switched off.
    assert torch.equal(normal.maps["stage4"], ablated.maps["stage4"])


def test_ablation_refused_on_baseline_with_clear_message():
    model = AttentionClassifier(ModelConfig("mobilenetv2_100", ALL14)).eval()
    with pytest.raises(ConfigError, match="no attention to ablate"):
        model.forward_with_maps(torch.randn(1, 3, 64, 64), ablate_attention=True)


def test_any_timm_backbone_works_and_typos_are_named():
    model = AttentionClassifier(ModelConfig("resnet18", ALL14, attention=True)).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 14)
    with pytest.raises(ConfigError, match="unknown backbone 'resnet1O1'"):
        AttentionClassifier(ModelConfig("resnet1O1", ALL14))
    with pytest.raises(ConfigError, match="stage 9 does not exist"):
        AttentionClassifier(ModelConfig("resnet18", ALL14, attention=True, attention_stages=(9,)))


def test_local_pretrained_weights_load_and_missing_file_fails_fast(tmp_path):
    import time

    import timm
    from safetensors.torch import save_file

    reference = timm.create_model("mobilenetv2_100").state_dict()
    save_file(reference, tmp_path / "model.safetensors")
    torch.save(reference, tmp_path / "model.pth")
    for name in ("model.safetensors", "model.pth"):
        model = AttentionClassifier(
            ModelConfig("mobilenetv2_100", ALL14, attention=True),
            pretrained_file=str(tmp_path / name),
        )
        assert torch.equal(model.backbone.conv_stem.weight, reference["conv_stem.weight"])
    start = time.perf_counter()
    with pytest.raises(PretrainedWeightsError, match="not found.*pass its path with --pretrained"):
        AttentionClassifier(ModelConfig("mobilenetv2_100", ALL14), pretrained_file="missing.pth")
    assert time.perf_counter() - start < 1.0
    with pytest.raises(PretrainedWeightsError, match="do not fit efficientnet_b0"):
        AttentionClassifier(
            ModelConfig("efficientnet_b0", ALL14), pretrained_file=str(tmp_path / "model.pth")
        )
