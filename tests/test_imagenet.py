"""`--pretrained imagenet`: timm's default weights through the Hugging Face cache, never a wait.

Nothing here downloads. The successful download cannot be tested on a machine without internet;
what is tested: the cache is used with no connection at all, and without a cached copy the run
fails without waiting on the network: when offline is asked for (HF_HUB_OFFLINE) it opens no
connection; when the hub cannot be reached (a closed port) it tries once and gives up, no retry;
a name lookup that hangs is not waited for. (`no_network`: tests/conftest.py.)
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import save_file

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.errors import PretrainedWeightsError
from cxr_attention.core.labels import ALL14
from cxr_attention.core.models.checkpoint import load_checkpoint
from cxr_attention.core.models.imagenet import (
    hub_weights,
    imagenet_weights_file,
    is_imagenet,
    reachable,
)
from cxr_attention.core.training import FitConfig, fit
from cxr_attention.core.training.model import build_model, pretrained_source
from cxr_attention.train.cli import main

TINY = "test_efficientnet"  # timm's 0.1 M-parameter test model; its hub repo is a real one
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def config(tmp_path: Path, **changes) -> FitConfig:
    options = dict(
        data=str(tmp_path / "data"),
        out=str(tmp_path / "run"),
        backbone=TINY,
        attention=True,
        labels="paper13",
        image_size=64,
        epochs=1,
        batch_size=16,
        val_fraction=0.3,
        workers=0,
        threads=1,
        progress=False,
        pretrained="imagenet",
    )
    return FitConfig(**(options | changes))


@pytest.fixture
def hub_home(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face home, no offline setting inherited from the caller's environment."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return home


def cache_weights(home: Path, repo_id: str, state: dict[str, torch.Tensor]) -> Path:
    """Put `state` where huggingface_hub keeps a downloaded model.safetensors of `repo_id`
    (hub/models--{org}--{name}/snapshots/{commit}/, refs/main naming the commit)."""
    repo = home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    save_file({k: v.contiguous() for k, v in state.items()}, snapshot / "model.safetensors")
    return snapshot / "model.safetensors"


def test_imagenet_means_timms_default_tag_on_the_hub():
    weights = hub_weights("resnet101")
    assert weights.repo_id.startswith("timm/resnet101.") and weights.repo_id.endswith("in1k")
    assert weights.source == f"hf-hub:{weights.repo_id}"
    assert weights.filenames[0] == "model.safetensors"
    assert is_imagenet("ImageNet") and not is_imagenet("imagenet.pth") and not is_imagenet(None)


def test_cached_weights_load_without_any_connection(hub_home, tmp_path, no_network):
    reference = timm.create_model(TINY).state_dict()  # with its 1000-class head, as on the hub
    repo_id = hub_weights(TINY).repo_id
    file = cache_weights(hub_home, repo_id, reference)
    # The layout is the one huggingface_hub itself reads.
    found = try_to_load_from_cache(repo_id, "model.safetensors", cache_dir=hub_home / "hub")
    assert found == str(file)
    model = build_model(config(tmp_path), ALL14)
    assert torch.equal(model.backbone.conv_stem.weight, reference["conv_stem.weight"])
    assert pretrained_source(config(tmp_path)) == f"hf-hub:{repo_id}"
    assert no_network == []


def test_a_run_records_which_hub_weights_it_started_from(hub_home, tmp_path, no_network):
    repo_id = hub_weights(TINY).repo_id
    cache_weights(hub_home, repo_id, timm.create_model(TINY).state_dict())
    generate_phantom(tmp_path / "data", n=60, size=64, seed=0, workers=1)
    run = fit(config(tmp_path))
    assert load_checkpoint(run.checkpoint).training["pretrained"] == f"hf-hub:{repo_id}"
    recorded = json.loads((run.path / "config.json").read_text())
    assert (
        recorded["pretrained"] == f"hf-hub:{repo_id}"
        and recorded["fit"]["pretrained"] == "imagenet"
    )
    assert no_network == []


def test_offline_without_a_cached_copy_fails_without_asking_the_network(
    hub_home, tmp_path, monkeypatch, no_network
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsError) as caught:
        build_model(config(tmp_path), ALL14)
    assert no_network == []  # not even the probe: offline was asked for
    message = str(caught.value)
    assert "\n" not in message and "not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message and "--pretrained PATH" in message


def test_an_unreachable_hub_is_tried_once_and_not_retried(hub_home, tmp_path, monkeypatch):
    """The hub client would retry a refused connection for most of a minute; the run tries the
    address once (a probe), and on refusal stops with the address in its message."""
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    tried: list[object] = []
    connect = socket.socket.connect

    def recorded(sock: socket.socket, address: object) -> None:
        tried.append(address)
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recorded)
    with pytest.raises(PretrainedWeightsError, match=rf"127\.0\.0\.1:{port} cannot be reached"):
        build_model(config(tmp_path), ALL14)
    assert tried == [("127.0.0.1", port)]


def test_a_hanging_name_lookup_is_not_waited_for(monkeypatch):
    """The probe gives up while the name lookup still hangs (a socket timeout does not bound
    DNS): `reachable` returns before the lookup does."""
    lookup_started, lookup_may_end, lookup_ended = (threading.Event() for _ in range(3))

    def hang(*_args, **_kwargs):
        lookup_started.set()
        lookup_may_end.wait(timeout=10)  # released by the test once `reachable` has answered
        lookup_ended.set()
        raise socket.gaierror("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    try:
        assert not reachable("huggingface.co", 443, timeout=0.3)
        assert not lookup_ended.is_set()
    finally:
        lookup_may_end.set()
    assert lookup_started.wait(timeout=10) and lookup_ended.wait(timeout=10)


def test_the_error_names_the_weights_to_fetch_by_hand(hub_home, monkeypatch, no_network):
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsError, match=r"huggingface\.co/timm/mobilenetv2_100\."):
        imagenet_weights_file("mobilenetv2_100")
    assert no_network == []


@pytest.mark.filterwarnings("error")  # a warning would be a second line on the console
def test_fit_command_offline_exits_2_with_one_line(
    hub_home, tmp_path, monkeypatch, no_network, capsys, caplog
):
    # in-process: the library reads HF_HUB_OFFLINE when it runs (a subprocess costs seconds of
    # imports; tests/test_cli.py runs the console script itself)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["fit", "--data", str(tmp_path / "data"), "--backbone", TINY]
    assert main([*argv, "--pretrained", "ImageNet", "--out", str(tmp_path / "run")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"cxr-attention fit: error: the ImageNet weights of {TINY} (timm/")
    assert no_network == []
    # nothing logged that a console would have shown on further lines
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not (tmp_path / "run").exists()
