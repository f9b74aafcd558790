"""Explanation maps: Grad-CAM by hand, ranges and sizes, side effects, threads, overlays."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import warnings

import numpy as np
import pytest
import torch

from cxr_attention.core.data.preprocess import config_input
from cxr_attention.core.errors import ConfigError
from cxr_attention.core.explain import METHODS, explain
from cxr_attention.core.explain.base import upsample
from cxr_attention.core.explain.faithfulness import deletion_insertion
from cxr_attention.core.explain.hooks import capture_activation
from cxr_attention.core.explain.integrated_gradients import black_baseline
from cxr_attention.core.explain.localization import map_maximum
from cxr_attention.core.explain.overlay import (
    colorize,
    colorize_difference,
    difference_map,
    overlay,
    scale_map,
    shared_scale,
)
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig

LABELS = ("Atelectasis", "Effusion", "Infiltration", "Nodule")
SIZE = 64
FAST = {"integrated_gradients": {"steps": 4, "internal_batch_size": 4}}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on a few shared cores torch's thread pool spins against other
    processes and small models run 10-20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model(attention: bool = True, seed: int = 0) -> AttentionClassifier:
    torch.manual_seed(seed)
    config = ModelConfig(
        "test_resnet",
        LABELS,
        attention=attention,
        attention_stages=(-2, -1) if attention else (-1,),
        image_size=SIZE,
        in_chans=1,
        mean=(0.5,),
        std=(0.25,),
    )
    model = AttentionClassifier(config)
    for module in model.modules():  # a gate that has "learned" something: not uniformly 0.5
        if hasattr(module, "bn") and hasattr(module, "gate"):
            torch.nn.init.normal_(module.bn.weight, 1.0, 0.1)
    with torch.no_grad():  # labels that respond to the (non-negative) features: Grad-CAM not empty
        model.head.weight.abs_()
    return model.eval()


@pytest.fixture(scope="module")
def model() -> AttentionClassifier:
    return tiny_model()


@pytest.fixture(scope="module")
def batch(model) -> torch.Tensor:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, SIZE, SIZE), dtype=np.uint8)
    return config_input(images, model.config)


def all_hooks(model: torch.nn.Module) -> int:
    hooks = torch.nn.modules.module
    count = len(hooks._global_forward_hooks) + len(hooks._global_forward_pre_hooks)
    count += len(hooks._global_backward_hooks)
    for m in model.modules():
        count += len(m._forward_hooks) + len(m._forward_pre_hooks)
        count += len(m._backward_hooks) + len(m._backward_pre_hooks)
    return count


# --- Grad-CAM against a direct computation ---------------------------------------------------------


def test_gradcam_final_equals_hand_computation(model, batch):
    label = 2
    explanation = explain(model, batch, label, "gradcam")
    with torch.no_grad():
        features = model.features(batch)
    # d logit_k / d A_c[i, j] = W[k, c] / (h w) for global average pooling then a linear layer.
    h, w = features.shape[-2:]
    weights = model.head.weight[label] / (h * w)
    cam = torch.relu(torch.einsum("c,bchw->bhw", weights, features))[:, None]
    cam = upsample(cam, (SIZE, SIZE))  # each cell where its features look (test_map_geometry)
    expected = cam / cam.amax(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(explanation.maps, expected, atol=1e-5, rtol=1e-4)
    assert explanation.stage == "stage4" and explanation.map_size == (h, w)
    torch.testing.assert_close(explanation.logits, model(batch))


def test_gradcam_intermediate_stage_equals_manual_backward(model, batch):
    """Grad-CAM at stage3 against a hand-written forward through the ResNet and `.backward()`."""
    net = model.backbone
    x = batch.clone()
    a = net.maxpool(net.act1(net.bn1(net.conv1(x))))
    a = net.layer3(net.layer2(net.layer1(a)))  # layer3 is the gated stage
    a.retain_grad()
    out = model.final_attention(net.layer4(a))
    logits = model.head_logits(out)
    expected = []
    for k in range(len(LABELS)):
        a.grad = None
        logits[:, k].sum().backward(retain_graph=True)
        weights = a.grad.mean(dim=(-2, -1))  # (B, C): the mean gradient per channel
        expected.append(torch.relu((weights[:, :, None, None] * a).sum(1)).detach())
    model.zero_grad(set_to_none=True)
    cam = upsample(torch.stack(expected, 1), (SIZE, SIZE))
    cam = cam / cam.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-30)
    explanation = explain(model, batch, None, "gradcam", stage="stage3")
    torch.testing.assert_close(explanation.maps, cam, atol=1e-5, rtol=1e-4)
    assert explanation.stage == "stage3" and explanation.map_size == (4, 4)


def test_gradcam_all_labels_at_once_equals_one_by_one(model, batch):
    together = explain(model, batch, None, "gradcam")
    for k, label in enumerate(LABELS):
        alone = explain(model, batch, label, "gradcam")
        torch.testing.assert_close(together.maps[:, k], alone.maps[:, 0])
    assert together.labels == LABELS


def test_gradcam_explains_the_raw_logit_not_a_softmax(model, batch):
    """Each label's map depends on that label's weights only: changing another label's head row
    (which would change a softmax over labels) leaves it untouched."""
    other = tiny_model()
    with torch.no_grad():
        other.head.weight[0].mul_(5.0)
        other.head.bias[0].add_(3.0)
    a = explain(model, batch, "Effusion", "gradcam").maps
    b = explain(other, batch, "Effusion", "gradcam").maps
    torch.testing.assert_close(a, b)


# --- every method: ranges, sizes, labels, side effects ----------------------------------------------


@pytest.mark.parametrize("method", sorted(METHODS))
def test_maps_in_unit_range_at_input_size_and_input_untouched(model, batch, method):
    before = batch.clone()
    explanation = explain(model, batch, ["Infiltrate", 0], method, **FAST.get(method, {}))
    assert explanation.maps.shape == (3, 2, SIZE, SIZE)
    assert explanation.labels == ("Infiltration", "Atelectasis")
    assert explanation.maps.min() >= 0.0 and explanation.maps.max() <= 1.0
    assert not explanation.maps.requires_grad
    assert torch.equal(batch, before) and not batch.requires_grad and batch.grad is None
    assert all(p.grad is None for p in model.parameters())
    assert all_hooks(model) == 0
    if method in ("gradcam", "integrated_gradients"):
        assert explanation.maps.amax(dim=(-2, -1)).min() == pytest.approx(1.0)


def test_attention_is_the_gate_map_upsampled(model, batch):
    out = model.forward_with_maps(batch)
    for stage in ("stage3", "stage4"):
        explanation = explain(model, batch, "Nodule", "attention", stage=stage)
        expected = upsample(out.maps[stage], (SIZE, SIZE))
        torch.testing.assert_close(explanation.maps, expected.detach())
        assert explanation.stage == stage
    assert explain(model, batch, None, "attention").stage == "stage4"  # the final gate


def test_attention_on_a_baseline_is_a_one_line_config_error(batch):
    baseline = tiny_model(attention=False)
    with pytest.raises(ConfigError) as info:
        explain(baseline, batch, None, "attention")
    message = str(info.value)
    assert "\n" not in message and "baseline" in message and "gradcam" in message


def test_bad_requests_are_config_errors(model, batch):
    with pytest.raises(ConfigError, match="unknown label 'Cardiomegaly'"):
        explain(model, batch, "Cardiomegaly")
    with pytest.raises(ConfigError, match="unknown explanation method"):
        explain(model, batch, 0, "saliency")
    with pytest.raises(ConfigError, match="unknown stage"):
        explain(model, batch, 0, "gradcam", stage="stage9")
    with pytest.raises(ConfigError, match="channels"):
        explain(model, batch.expand(-1, 3, -1, -1), 0)
    model.train()
    try:
        with pytest.raises(ConfigError, match="model.eval"):
            explain(model, batch, 0)
    finally:
        model.eval()


def test_ablated_attention_changes_gradcam_and_needs_attention(model, batch):
    on = explain(model, batch, 0, "gradcam")
    off = explain(model, batch, 0, "gradcam", ablate_attention=True)
    assert (on.maps - off.maps).abs().max() > 1e-3
    with pytest.raises(ConfigError, match="baseline"):
        explain(tiny_model(attention=False), batch, 0, "gradcam", ablate_attention=True)
    # Ablated, the stage3 gate passes features through, so the final gate sees other features.
    gate_on = explain(model, batch, 0, "attention").maps
    gate_off = explain(model, batch, 0, "attention", ablate_attention=True).maps
    assert (gate_on - gate_off).abs().max() > 1e-3
    assert torch.equal(
        explain(model, batch, 0, "random", ablate_attention=True).maps,
        explain(model, batch, 0, "random").maps,
    )


def test_random_maps_are_seeded(model, batch):
    a = explain(model, batch, None, "random", seed=1).maps
    b = explain(model, batch, None, "random", seed=1).maps
    c = explain(model, batch, None, "random", seed=2).maps
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0, 0], a[0, 1])  # independent per label


def test_random_control_points_anywhere_with_equal_chance(model):
    """The control's maximum is uniform over the image, so its pointing-game rate is the share of
    the image a box covers (no bias towards borders, where lesions never are)."""
    x = torch.zeros((400, 1, 32, 32))
    maps = explain(model, x, 0, "random", seed=0).maps[:, 0].numpy()
    peaks = np.array([map_maximum(m) for m in maps])
    counts, _, _ = np.histogram2d(peaks[:, 0], peaks[:, 1], bins=2, range=[[0, 32], [0, 32]])
    assert counts.min() > 70 and counts.max() < 130  # 100 expected per quadrant
    centre = ((peaks >= 8) & (peaks < 24)).all(axis=1).mean()
    assert 0.15 < centre < 0.35  # the central 16 x 16 box is a quarter of the image


def test_integrated_gradients_black_baseline_and_bounded_batches(model):
    # Black except a bright square: IG attributes (x - baseline) * mean gradient, so pixels that
    # equal the black baseline get exactly zero.
    image = np.zeros((1, SIZE, SIZE), dtype=np.uint8)
    image[0, 20:40, 24:44] = 220
    x = config_input(image, model.config)
    torch.testing.assert_close(
        black_baseline(model, x), config_input(np.zeros_like(image), model.config)
    )
    small = explain(model, x, "Effusion", "integrated_gradients", steps=8, internal_batch_size=3)
    large = explain(model, x, "Effusion", "integrated_gradients", steps=8, internal_batch_size=64)
    torch.testing.assert_close(small.maps, large.maps, atol=1e-5, rtol=1e-4)
    outside = np.ones((SIZE, SIZE), dtype=bool)
    outside[20:40, 24:44] = False
    assert small.maps[0, 0][torch.from_numpy(outside)].abs().max() == 0
    assert small.maps[0, 0].max() == 1.0 and small.stage == "input"


# --- hooks, memory, threads -------------------------------------------------------------------------


def test_hooks_released_after_calls_and_after_an_exception(model, batch):
    explain(model, batch, None, "gradcam", stage="stage3")
    assert all_hooks(model) == 0
    with pytest.raises(RuntimeError, match="inside"), capture_activation(model.backbone.layer2):
        assert all_hooks(model) == 1
        raise RuntimeError("failure inside the block")
    assert all_hooks(model) == 0
    with pytest.raises(ConfigError):
        explain(model, batch, "no such label", "gradcam", stage="stage3")
    assert all_hooks(model) == 0


def live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance() touches deprecated torch.distributed aliases
        warnings.simplefilter("ignore")
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


@pytest.mark.parametrize("options", [{}, {"stage": "stage3"}], ids=["final", "stage3"])
def test_memory_flat_over_repeated_calls(model, batch, options):
    image = batch[:1]
    for _ in range(3):  # warm-up: lazy allocations, caches of the first call
        explain(model, image, None, "gradcam", **options)
    tensors = live_tensors()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(20):
            explain(model, image, None, "gradcam", **options)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert live_tensors() == tensors
    # bytes of Python objects kept across 20 calls: 4 KB a call, as when it made 50 calls
    # (about 1 KB in all is kept, 2026-12-07)
    assert end - start < 80_000


def test_two_threads_explaining_at_once_match_sequential(model, batch):
    jobs = [
        ("gradcam", {"stage": "stage3"}),
        ("gradcam", {}),
        ("attention", {"stage": "stage3"}),
    ]
    inputs = [batch[:2], batch[1:]]
    expected = [[explain(model, x, None, m, **o).maps for m, o in jobs] for x in inputs]
    results: list[list] = [[], []]
    barrier = threading.Barrier(2)
    errors = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                results[i].append([explain(model, inputs[i], None, m, **o).maps for m, o in jobs])
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(2):
        for repeat in results[i]:
            for got, want in zip(repeat, expected[i], strict=True):
                torch.testing.assert_close(got, want)
    assert all_hooks(model) == 0


# --- faithfulness -----------------------------------------------------------------------------------


def test_deletion_insertion_endpoints_are_the_image_and_black(model, batch):
    x = batch[:1]
    heat = explain(model, x, "Nodule", "gradcam").map("Nodule")
    curve = deletion_insertion(model, x, "Nodule", heat, steps=5, batch_size=4)
    with torch.no_grad():
        full = model(x)[0, 3].item()
        black = model(black_baseline(model, x))[0, 3].item()
    assert curve.fractions.tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert curve.deletion[0] == pytest.approx(full, abs=1e-5)
    assert curve.deletion[-1] == pytest.approx(black, abs=1e-5)
    assert curve.insertion[0] == pytest.approx(black, abs=1e-5)
    assert curve.insertion[-1] == pytest.approx(full, abs=1e-5)
    trapezoid = float(np.sum((curve.deletion[1:] + curve.deletion[:-1]) / 2 * 0.2))
    assert curve.deletion_auc == pytest.approx(trapezoid)


# --- overlays ---------------------------------------------------------------------------------------


def test_overlay_opacity_and_colours():
    view = np.full((8, 8), 100, dtype=np.uint8)
    heat = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    assert overlay(view, heat, opacity=0.0).tolist() == np.full((8, 8, 3), 100).tolist()
    full = overlay(view, heat, opacity=1.0)
    assert np.array_equal(full, colorize(heat))
    assert full.dtype == np.uint8 and full.shape == (8, 8, 3)
    assert full[0, 0, 2] > full[0, 0, 0] and full[-1, -1, 0] > full[-1, -1, 2]  # jet: blue -> red
    half = overlay(view, heat, opacity=0.5)
    assert np.abs(half.astype(int) - (100 + full.astype(int)) / 2).max() <= 1
    with pytest.raises(ConfigError, match="opacity"):
        overlay(view, heat, opacity=1.5)
    with pytest.raises(ConfigError, match="model view"):
        overlay(view.astype(np.float32), heat)


def test_shared_scale_keeps_weaker_maps_weaker():
    strong = np.array([[0.0, 1.0]], dtype=np.float32)
    weak = np.array([[0.0, 0.5]], dtype=np.float32)
    assert scale_map(weak)[0, 1] == 1.0  # per image: stretched to full scale
    vmin, vmax = shared_scale([strong, weak])
    assert (vmin, vmax) == (0.0, 1.0)
    assert scale_map(weak, vmin, vmax)[0, 1] == 0.5
    assert not np.array_equal(colorize(weak, vmin=vmin, vmax=vmax), colorize(weak))
    assert scale_map(np.full((2, 2), 0.3)).max() == 0.0  # constant map: no division by zero


def test_difference_map_is_on_minus_off_in_diverging_colours():
    on = np.array([[0.9, 0.1, 0.5]], dtype=np.float32)
    off = np.array([[0.1, 0.9, 0.5]], dtype=np.float32)
    diff = difference_map(on, off)
    assert diff[0].tolist() == pytest.approx([0.8, -0.8, 0.0])
    rgb = colorize_difference(diff)
    assert tuple(rgb[0, 0]) == (255, 0, 0)  # attention adds here: red
    assert tuple(rgb[0, 1]) == (0, 0, 255)  # attention removes here: blue
    assert min(rgb[0, 2]) >= 250  # unchanged: white
    with pytest.raises(ConfigError):
        difference_map(on, off[:, :2])
