"""The paper's backbones with each attention kind: build, forward, maps, ablation, output stride."""

import numpy as np
import pytest
import torch

from cxr_attention.core.errors import ConfigError, PretrainedWeightsError
from cxr_attention.core.labels import ALL14, PAPER13
from cxr_attention.core.models.attention import SpatialAttention
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.models.registry import PAPER_BACKBONES


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


def settle_batch_norm(model: AttentionClassifier, seed: int = 0) -> None:
    """Batch-norm statistics of one batch of noise, so that a freshly built network's features
    have the scale training gives them (EfficientNet's are about 1e-5 with the initial ones)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # the plain average of the batches seen
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 96, 96, generator=torch.Generator().manual_seed(seed)))
    model.eval()


def test_final_gate_acts_on_the_head_convolutions_features_of_efficientnet():
    # timm's features_only stops at blocks.6 (320 channels); forward_features adds a 1x1 conv (1280).
    model = AttentionClassifier(ModelConfig("efficientnet_b0", ALL14, attention=True))
    settle_batch_norm(model)
    randomise_gates(model)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        head_features = model.backbone.forward_features(x)  # after conv_head, before the gate
        gated = model.forward_with_maps(x)
        features = model.features(x)
        ungated = model.forward_with_maps(x, ablate_attention=True)  # the gate set to 1
    assert head_features.shape[1] == 1280 and features.shape == head_features.shape
    gate = gated.maps["stage4"]
    assert gate.shape == (2, 1, 3, 3) and 0 <= gate.min() < 0.1 < 0.9 < gate.max() <= 1
    # The final features are the head convolution's, times the map ...
    assert torch.allclose(features, head_features * gate, atol=1e-6)
    # ... so the logits are the linear head on their mean, and change when the gate is 1.
    assert torch.allclose(gated.logits, model.head(features.mean(dim=(2, 3))), atol=1e-5)
    assert torch.allclose(ungated.logits, model.head(head_features.mean(dim=(2, 3))), atol=1e-5)
    assert (gated.logits - ungated.logits).abs().max() > 1e-2


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


def test_local_pretrained_weights_load_and_a_missing_file_never_reaches_for_the_hub(
    tmp_path, no_network
):
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
    # A missing file is an error at once, not a fall-through to a hub download (which, offline,
    # retries for most of a minute): no connection is tried.
    with pytest.raises(PretrainedWeightsError, match="not found.*pass its path with --pretrained"):
        AttentionClassifier(ModelConfig("mobilenetv2_100", ALL14), pretrained_file="missing.pth")
    with pytest.raises(PretrainedWeightsError, match="do not fit efficientnet_b0"):
        AttentionClassifier(
            ModelConfig("efficientnet_b0", ALL14), pretrained_file=str(tmp_path / "model.pth")
        )
    assert no_network == []


def randomise_head(model: AttentionClassifier, seed: int = 0) -> None:
    """Give a class-specific head weights of the size training reaches and non-zero biases (it
    starts at std 0.01 and zero bias); a linear head is left as it is."""
    if not model.class_specific:
        return
    gen = torch.Generator().manual_seed(seed)
    head = model.head
    with torch.no_grad():
        head.classifier.weight.copy_(torch.randn(head.classifier.weight.shape, generator=gen))
        head.bias.copy_(torch.randn(head.bias.shape, generator=gen))


def class_model(**changes) -> AttentionClassifier:
    options = dict(attention=True, attention_kind="class", attention_lambda=0.3, image_size=64)
    torch.manual_seed(0)
    model = AttentionClassifier(ModelConfig("mobilenetv2_100", PAPER13, **(options | changes)))
    randomise_head(model.eval())
    return model


def test_class_maps_are_one_per_label_in_unit_interval():
    model = class_model(output_stride=16)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        maps = model.forward_with_maps(x).maps
        scores = model.head.score_maps(model.features(x))
    assert model.class_specific and list(maps) == ["class"]
    m = maps["class"]
    assert m.shape == (2, len(PAPER13), 4, 4)  # output stride 16 at 64 px
    assert 0.0 <= m.min() < m.max() <= 1.0
    # Each label's map is the probability of that label from each place alone ...
    assert torch.allclose(m, torch.sigmoid(scores + model.head.bias.view(1, -1, 1, 1)))
    # ... and the labels' maps differ in where they peak, not only in level.
    peaks = m.flatten(2).argmax(dim=2)
    assert len(set(peaks[0].tolist())) > 1


def test_a_class_map_the_head_is_sure_of_still_peaks_at_its_strongest_place():
    """In float32 sigmoid(z) is exactly 1.0 for every z above 16.6: on a film a trained class head
    is sure of, its map ties at 1.0 on several places (median 11 of 256 cells on the shipped
    real-film heads). Where it peaks, and what is blanked as its top, must follow the log-odds."""
    from cxr_attention.core.explain import explain
    from cxr_attention.core.explain.lung_scores import INSIDE, NOWHERE, score_in_lungs
    from cxr_attention.core.study.blanking import top_region

    model = class_model(output_stride=16)
    with torch.no_grad():
        model.head.bias[0] = 60.0  # every place of label 0 far past 16.6
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    explanation = explain(model, x, 0, "attention")
    heat, ranked = explanation.map(0), explanation.ranked(0)
    assert (heat == 1.0).all()  # the probabilities say nothing about where
    with torch.no_grad():
        scores = model.head.score_maps(model.features(x))[0, 0]  # (4, 4), by hand
    cell = divmod(int(scores.argmax()), scores.shape[1])
    # The peak is the strongest cell's: its centre's pixel (a cell j sits on pixel 16 j), and out
    # to the image's edge for a cell on the border.
    rows, cols = np.nonzero(ranked == ranked.max())
    nearest = {
        (min(round(r / 16), 3), min(round(c / 16), 3)) for r, c in zip(rows, cols, strict=True)
    }
    assert nearest == {cell}
    lungs = np.zeros(heat.shape, bool)
    lungs[rows.min() - 4 : rows.max() + 5, cols.min() - 4 : cols.max() + 5] = True
    assert score_in_lungs(heat, lungs, order=ranked).place == INSIDE
    assert score_in_lungs(heat, lungs).place == NOWHERE  # what the ties alone would say
    # The study's blanked top region (here of 64 pixels) gathers round that peak; by the ties
    # alone it would be the film's first row.
    top_rows, top_cols = np.nonzero(top_region(ranked, 64))
    assert top_region(ranked, 64)[rows, cols].all()
    assert abs(top_rows.mean() - rows.mean()) < 8 and abs(top_cols.mean() - cols.mean()) < 8
    assert np.nonzero(top_region(heat, 64))[0].max() == 0


@pytest.mark.parametrize("temperature", [2.0, 99.0])
def test_class_head_logits_and_its_ablation_by_hand(temperature):
    model = class_model(attention_temperature=temperature)
    head, x = model.head, torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        scores = head.score_maps(model.features(x)).flatten(2)  # (B, L, places)
        normal = model.forward_with_maps(x)
        ablated = model.forward_with_maps(x, ablate_attention=True)
    # CSRA: the average score, plus lambda x the softmax(T s)-weighted score (T = 99: the max).
    base = scores.mean(dim=2) + head.bias
    if temperature >= 99:
        attended = scores.amax(dim=2)
    else:
        weights = torch.exp(temperature * scores)
        attended = (weights * scores).sum(dim=2) / weights.sum(dim=2)
    assert torch.allclose(normal.logits, base + 0.3 * attended, atol=1e-5)
    # Ablated: the attention term is gone; what is left is the average-pooled score and the bias.
    assert torch.allclose(ablated.logits, base, atol=1e-5)
    assert (normal.logits - ablated.logits).abs().mean() > 1e-2
    assert torch.equal(normal.maps["class"], ablated.maps["class"])  # the maps still reported


def test_cbam_applies_channel_then_spatial_attention_and_ablation_passes_features():
    from cxr_attention.core.models.attention import ChannelSpatialAttention, gate_call

    model = AttentionClassifier(
        ModelConfig("mobilenetv2_100", ALL14, attention=True, attention_kind="cbam")
    ).eval()
    randomise_gates(model)
    cbam = model.final_attention
    assert isinstance(cbam, ChannelSpatialAttention) and cbam.name == "stage4"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        trunk = model.backbone.forward_features(x)
        recalibrated = cbam.channel(trunk)
        with gate_call() as call:
            gated = model.features(x)
        with gate_call(ablate=True):
            ablated = model.features(x)
    # The channel half rescales each channel of each film by a weight in (0, 1)...
    # (read where each channel is largest; MobileNetV2's ReLU6 leaves some channels all zero)
    flat, place = trunk.flatten(2), trunk.flatten(2).abs().argmax(dim=2, keepdim=True)
    live = flat.gather(2, place).abs() > 1e-6
    weights = torch.where(live, recalibrated.flatten(2).gather(2, place), 0) / torch.where(
        live, flat.gather(2, place), 1
    )
    assert live.float().mean() > 0.5
    assert weights[live].min() > 0.0 and weights[live].max() < 1.0 and weights[live].std() > 0.01
    assert torch.allclose(recalibrated, trunk * weights.unsqueeze(-1), atol=1e-5)
    # ... then the spatial gate's map, computed from the recalibrated features, multiplies them.
    expected_map = cbam.spatial.attention_map(recalibrated)
    assert torch.allclose(call.maps["stage4"], expected_map)
    assert torch.allclose(gated, recalibrated * expected_map, atol=1e-6)
    # Ablated, both halves stand aside: the trunk's features pass unchanged.
    assert torch.equal(ablated, trunk)


@pytest.mark.parametrize("backbone", list(PAPER_BACKBONES))
def test_output_stride_16_gives_every_paper_backbone_finer_maps(backbone):
    config = ModelConfig(
        backbone, PAPER13, attention=True, attention_stages=(-2, -1), output_stride=16
    )
    model = AttentionClassifier(config).eval()
    with torch.no_grad():
        out = model.forward_with_maps(torch.randn(2, 3, 64, 64))
        final = model.features(torch.randn(1, 3, 64, 64))
    assert out.logits.shape == (2, 13) and torch.isfinite(out.logits).all()
    # The last stage dilated instead of strided: 4 x 4 at 64 px (2 x 2 at stride 32), the same
    # size as the stage before it.
    assert {name: tuple(m.shape) for name, m in out.maps.items()} == {
        "stage3": (2, 1, 4, 4),
        "stage4": (2, 1, 4, 4),
    }
    assert final.shape[-2:] == (4, 4)


@pytest.mark.parametrize("backbone", ["densenet121", "vgg11"])
def test_a_backbone_that_cannot_dilate_is_a_one_line_config_error(backbone):
    # DenseNet does not take output_stride; VGG takes it and asserts 32.
    with torch.device("meta"), pytest.raises(ConfigError) as error:
        AttentionClassifier(ModelConfig(backbone, ALL14, output_stride=16))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{backbone} cannot change its output stride")
    assert message.endswith("leave --output-stride at 32")
