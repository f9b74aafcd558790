"""Checkpoints: identical logits after a round trip (every attention kind, both output strides;
checkpoints from before the kinds), and one clear error for each broken file."""

from dataclasses import replace

import pytest
import torch

from cxr_attention.core.errors import CheckpointError
from cxr_attention.core.labels import PAPER13
from cxr_attention.core.models.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from cxr_attention.core.models.classifier import AttentionClassifier, ModelConfig
from cxr_attention.core.models.kinds import ATTENTION_KINDS, KIND_TITLES
from cxr_attention.train.cli import main
from tests.test_models import randomise_gates, randomise_head

TRAINING = {
    "epochs": 2,
    "best_epoch": 1,
    "best_val_macro_auc": 0.75,
    "data": {"source": "phantom", "root": "/data", "label_set": "paper13", "fingerprint": "f" * 16},
    "pretrained": None,
    "thresholds": {"Effusion": {"youden": 0.3, "f1": 0.4}},
}


@pytest.fixture
def saved(tmp_path):
    config = ModelConfig("mobilenetv2_100", PAPER13, attention=True, image_size=64)
    model = AttentionClassifier(config).eval()
    randomise_gates(model)
    path = save_checkpoint(tmp_path / "checkpoint.pt", model, TRAINING)
    return model, path


def test_round_trip_gives_identical_logits_and_metadata(saved):
    model, path = saved
    x = torch.randn(3, 3, 64, 64)
    loaded = load_checkpoint(path)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
        assert torch.equal(
            loaded.model.forward_with_maps(x).maps["stage4"],
            model.forward_with_maps(x).maps["stage4"],
        )
    assert loaded.config == model.config
    assert loaded.labels == PAPER13
    assert loaded.training["data"]["source"] == "phantom"
    assert loaded.thresholds["Effusion"] == 0.3
    assert loaded.thresholds["Atelectasis"] == 0.5  # no threshold recorded: the neutral 0.5


def _payload(path):
    return torch.load(path, weights_only=True)


# The fields a checkpoint saved before attention kinds existed lacks.
KIND_FIELDS = (
    "attention_kind",
    "attention_temperature",
    "attention_lambda",
    "output_stride",
    "head_stage",
)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_every_attention_kind_round_trips_with_identical_logits_and_maps(kind, tmp_path):
    config = ModelConfig(
        "mobilenetv2_100",
        PAPER13,
        attention=True,
        attention_kind=kind,
        attention_temperature=2.0,
        attention_lambda=0.3,
        output_stride=16,
        image_size=64,
    )
    torch.manual_seed(1)
    model = AttentionClassifier(config).eval()
    randomise_gates(model)
    randomise_head(model)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "checkpoint.pt", model, TRAINING))
    assert loaded.config == config and loaded.model.class_specific == (kind == "class")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model.forward_with_maps(x), loaded.model.forward_with_maps(x)
    assert torch.equal(ours.logits, theirs.logits)
    assert ours.maps.keys() == theirs.maps.keys() == {"class" if kind == "class" else "stage4"}
    for name, maps in ours.maps.items():
        # Output stride 16 at 64 px: 4 x 4 maps, one per label for the class head.
        assert maps.shape == (2, len(PAPER13) if kind == "class" else 1, 4, 4)
        assert torch.equal(maps, theirs.maps[name])
        assert maps.std() > 0  # the maps compared are not a uniform start


def test_a_checkpoint_from_before_attention_kinds_loads_as_spatial_stride_32(
    saved, tmp_path, capsys
):
    model, path = saved
    data = _payload(path)
    for name in KIND_FIELDS:
        del data["model"][name]
    torch.save(data, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert old.config.attention_kind == "spatial" and old.config.output_stride == 32
    assert old.config.head_stage == -1
    assert old.config == model.config and not old.model.class_specific
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(old.model(x), model(x))
    assert main(["inspect", str(tmp_path / "old.pt")]) == 0  # in-process: the same command
    out = capsys.readouterr().out
    assert f"attention        {KIND_TITLES['spatial']}, after stage4 (stages -1;" in out
    assert "output stride    32: final feature map 2x2 at 64 px" in out


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("these are not weights")
    with pytest.raises(CheckpointError, match="not a PyTorch file"):
        load_checkpoint(bad)


def test_missing_and_empty(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")


def test_truncated(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(cut)


def test_bare_state_dict_and_pickled_model(saved, tmp_path):
    model, _ = saved
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="bare state_dict"):
        load_checkpoint(tmp_path / "sd.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(tmp_path / "obj.pt")


def test_wrong_format_version(saved, tmp_path):
    _, path = saved
    data = _payload(path)
    data["format_version"] = FORMAT_VERSION + 1
    torch.save(data, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match=f"format version {FORMAT_VERSION + 1}"):
        load_checkpoint(tmp_path / "future.pt")


def test_weights_that_do_not_fit_name_the_first_key(saved, tmp_path):
    _, path = saved
    data = _payload(path)
    data["model"]["attention"] = False  # the saved gates have no place in a baseline
    torch.save(data, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"unexpected key 'final_attention\.conv\.weight'"):
        load_checkpoint(tmp_path / "extra.pt")

    data = _payload(path)
    data["model"]["labels"] = list(PAPER13[:5])  # head of 13 outputs, config says 5
    torch.save(data, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"'head\.weight' has shape \(13, 1280\)"):
        load_checkpoint(tmp_path / "shape.pt")

    data = _payload(path)
    del data["state_dict"]["head.bias"]
    torch.save(data, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"missing key 'head\.bias'"):
        load_checkpoint(tmp_path / "missing.pt")


def test_inspect_cli_prints_metadata_and_one_line_errors(saved, tmp_path, capsys):
    _, path = saved
    # in-process (a subprocess costs seconds of imports; tests/test_cli.py runs the console itself)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "MobileNetV2 (mobilenetv2_100)" in out
    assert "attention        spatial gate (CBAM, the paper's), after stage4 (stages -1;" in out
    assert "attention maps   one for all labels, per gate: stage4 2x2 at 64 px" in out
    assert "synthetic phantom" in out
    assert "Effusion 0.300" in out

    bad = tmp_path / "bad.pt"
    bad.write_text("x")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a PyTorch file" in err


def _trust_sections(model: AttentionClassifier) -> tuple[dict, dict]:
    """An OOD description fitted on pooled features of noise images, and temperatures."""
    import numpy as np

    from cxr_attention.core.trust.features import pooled_forward
    from cxr_attention.core.trust.ood import fit_ood
    from cxr_attention.core.trust.temperature import TemperatureScaling

    with torch.no_grad():
        features = pooled_forward(model, torch.rand(24, 3, 64, 64)).features
    arrays = {name: value.numpy().astype(np.float64) for name, value in features.items()}
    ood = fit_ood({n: a[:16] for n, a in arrays.items()}, {n: a[16:] for n, a in arrays.items()})
    temperatures = tuple(1.0 + 0.1 * k for k in range(len(PAPER13)))
    return ood.to_dict(), TemperatureScaling(PAPER13, temperatures).to_dict()


def test_ood_and_calibration_sections_round_trip(saved, tmp_path):
    model, _ = saved
    ood, calibration = _trust_sections(model)
    path = save_checkpoint(tmp_path / "c.pt", model, TRAINING, ood=ood, calibration=calibration)
    loaded = load_checkpoint(path)
    assert loaded.calibrated and loaded.ood is not None
    assert loaded.ood.threshold == ood["threshold"] and loaded.ood.layer_names[-1] == "final"
    logits = torch.tensor([[0.0, 2.0] + [1.0] * (len(PAPER13) - 2)])
    probabilities = loaded.probabilities(logits)[0]
    assert float(probabilities[0]) == 0.5  # logit 0 stays 0.5 at any temperature
    assert float(probabilities[1]) == pytest.approx(float(torch.sigmoid(torch.tensor(2.0 / 1.1))))
    # Saved without the sections (as every checkpoint before them): raw sigmoid, no OOD.
    plain = load_checkpoint(save_checkpoint(tmp_path / "p.pt", model, TRAINING))
    assert plain.ood is None and not plain.calibrated
    assert torch.equal(plain.probabilities(logits), torch.sigmoid(logits))


def test_ood_section_that_does_not_fit_the_model_is_refused(saved, tmp_path):
    model, _ = saved
    ood, calibration = _trust_sections(model)
    ood["layers"][-1]["mean"] = ood["layers"][-1]["mean"][:10]
    ood["layers"][-1]["basis"] = ood["layers"][-1]["basis"][:10]
    path = save_checkpoint(tmp_path / "c.pt", model, TRAINING, ood=ood, calibration=calibration)
    with pytest.raises(CheckpointError, match="OOD description of layer 'final'.*does not fit"):
        load_checkpoint(path)
    calibration["temperature"].pop("Effusion")
    path = save_checkpoint(tmp_path / "t.pt", model, TRAINING, calibration=calibration)
    with pytest.raises(CheckpointError, match="temperatures do not name the model's labels"):
        load_checkpoint(path)


def test_inspect_says_what_a_class_specific_head_is_and_where_its_maps_are(tmp_path, capsys):
    import json

    config = ModelConfig(
        "mobilenetv2_100",
        PAPER13,
        attention=True,
        attention_kind="class",
        attention_temperature=99.0,
        attention_lambda=0.2,
        output_stride=16,
        image_size=128,
    )
    path = save_checkpoint(tmp_path / "checkpoint.pt", AttentionClassifier(config), TRAINING)
    assert main(["inspect", str(tmp_path)]) == 0  # the run folder is enough
    lines = capsys.readouterr().out.splitlines()
    head = "in the head (temperature 99 = max pooling, lambda 0.2)"
    assert f"attention        {KIND_TITLES['class']}, {head}" in lines
    assert "attention maps   one per label (13): 8x8 at 128 px" in lines
    assert "output stride    16 (last stage dilated): final feature map 8x8 at 128 px" in lines
    assert main(["inspect", str(path), "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert (model["attention_kind"], model["output_stride"]) == ("class", 16)
    # The other way to a finer map: the network ends a stage early (stage3, stride 16).
    shallow = replace(config, output_stride=32, head_stage=-2)
    path = save_checkpoint(tmp_path / "shallow.pt", AttentionClassifier(shallow), TRAINING)
    assert main(["inspect", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "attention maps   one per label (13): 8x8 at 128 px" in lines
    ends = "network ends at stage3 (head stage -2): final feature map 8x8 at 128 px"
    assert f"output stride    16, {ends}" in lines  # 128 px over 8 cells, not the config's 32


def test_inspect_json_gives_an_old_checkpoint_the_fields_it_lacks(saved, tmp_path, capsys):
    import json

    _, path = saved
    data = _payload(path)
    for name in KIND_FIELDS:
        del data["model"][name]
    torch.save(data, tmp_path / "old.pt")
    assert main(["inspect", str(tmp_path / "old.pt"), "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["model"]
    assert (model["attention_kind"], model["output_stride"]) == ("spatial", 32)
    data["model"]["attention_kind"] = "sideways"
    torch.save(data, tmp_path / "bad.pt")
    assert main(["inspect", str(tmp_path / "bad.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "attention kind 'sideways'" in err
