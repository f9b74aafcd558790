"""A model the project made, as the start of a new run: `fit --pretrained RUN_OR_CHECKPOINT`.

Any run folder or checkpoint of this project (the shipped zoos' 8-bit copies included), whatever
labels it learnt, can start a run on other films and other labels:

- the run's model options it leaves out (backbone, attention, where it sits, head stage, image
  size: every `FitConfig` field the model config shares, labels aside) take the start's values;
  the ones given win;
- the start's input contract comes along whole: every model config field that `fit` has no option
  for (input channels, normalisation, and any preprocessing a later model config records), so the
  new model sees films as the start did;
- its weights are carried by `core.models.transfer`: backbone, gates where the new model has them,
  a fresh head for the new labels; a mismatch is refused in one line before any data is read.

The run records where it started (`start_record`: config.json and the checkpoint's training
summary), and `inspect` shows it. Reading a start loads its checkpoint once per process.
"""

from __future__ import annotations

import functools
import pickle
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from cxr_attention.core.errors import PretrainedWeightsError
from cxr_attention.core.models.checkpoint import FORMAT, load_checkpoint
from cxr_attention.core.models.classifier import (
    AttentionClassifier,
    ModelConfig,
    missing_weights_error,
)
from cxr_attention.core.models.imagenet import is_imagenet
from cxr_attention.core.models.transfer import Transfer, plan_transfer

CHECKPOINT = "checkpoint.pt"  # the file a run folder keeps its best model in (core.runs)
_NOT_CARRIED = frozenset({"labels"})  # the new labels are the point of the new run


@dataclass(frozen=True, eq=False)  # one object per checkpoint file (cached): hashed by identity
class StartingModel:
    """A project checkpoint opened as a start: its model config, training summary and weights."""

    given: str  # --pretrained as written
    path: Path  # the checkpoint file
    model: AttentionClassifier  # float32, on the CPU (8-bit copies expanded)
    training: dict[str, Any]

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    def fit_defaults(self, fit_options: frozenset[str]) -> dict[str, Any]:
        """The start's values of the `FitConfig` fields (`fit_options`, the names) its model
        config shares (labels aside)."""
        model = self.config.to_dict()
        return {name: model[name] for name in sorted(fit_options & set(model) - _NOT_CARRIED)}

    def input_contract(self, fit_options: frozenset[str]) -> dict[str, Any]:
        """The model config fields `fit` has no option for (not in `fit_options`, the
        `FitConfig` field names): how the start reads a film."""
        return {
            name: value
            for name, value in self.config.to_dict().items()
            if name not in fit_options and name not in _NOT_CARRIED
        }

    def transfer_to(self, config: ModelConfig) -> Transfer:
        """What a new model of `config` takes from this start (refused in one line if nothing
        fits); planned on the meta device, once per config."""
        return _plan(self, config)


def open_start(pretrained: str | None) -> StartingModel | None:
    """The project model `pretrained` names (a run folder or a checkpoint file), or None when it
    names something else: nothing, `imagenet`, timm weights, or a path that does not exist."""
    if pretrained is None or is_imagenet(pretrained):
        return None
    path = Path(pretrained).expanduser()
    if path.is_dir():
        if not (path / CHECKPOINT).is_file():
            raise PretrainedWeightsError(
                f"{path} is a folder without {CHECKPOINT}: --pretrained takes a run folder, a "
                "checkpoint, timm weights (.safetensors or .pth) or imagenet"
            )
        path = path / CHECKPOINT
    if not path.is_file():
        return None
    stat = path.stat()
    return _open(str(path.resolve()), stat.st_mtime_ns, stat.st_size, pretrained)


def check_start_exists(pretrained: str) -> None:
    """Refuse, in one line, a --pretrained path that names nothing (`imagenet` aside)."""
    if not is_imagenet(pretrained) and not Path(pretrained).expanduser().exists():
        raise missing_weights_error(Path(pretrained).expanduser(), None)


def starts_from_project_model(pretrained: str | None) -> bool:
    return open_start(pretrained) is not None


def with_start_defaults(options: dict[str, Any], fit_options: frozenset[str]) -> dict[str, Any]:
    """`options` (FitConfig fields) with the model options it leaves out taken from its
    --pretrained project model; unchanged when there is none."""
    start = open_start(options.get("pretrained"))
    if start is None:
        return options
    return start.fit_defaults(fit_options) | options


def with_input_contract(
    config: ModelConfig, pretrained: str | None, fit_options: frozenset[str]
) -> ModelConfig:
    """`config` reading films as the --pretrained project model does (unchanged without one)."""
    start = open_start(pretrained)
    return config if start is None else replace(config, **start.input_contract(fit_options))


def start_line(
    start: StartingModel, transfer: Transfer, config: ModelConfig, fit_options: frozenset[str]
) -> str:
    """The one line a run prints: what it took from its start and what it left."""
    old = start.config
    contract = ", ".join(f"{k} {_words(v)}" for k, v in start.input_contract(fit_options).items())
    size = (
        f"{config.image_size} px as it learnt"
        if config.image_size == old.image_size
        else f"{config.image_size} px (it learnt at {old.image_size} px)"
    )
    return (
        f"starting from {start.given} ({old.variant}, learnt {', '.join(old.labels)}): took its "
        f"{', '.join(transfer.took)} and input ({contract}; {size}); left "
        f"{', '.join(transfer.left)}; fresh: {', '.join(transfer.fresh)}"
    )


def start_record(
    pretrained: str | None, config: ModelConfig, fit_options: frozenset[str]
) -> dict[str, Any] | None:
    """Where a run of model `config` started (config.json and the checkpoint record it); None
    from scratch, ImageNet or timm weights."""
    start = open_start(pretrained)
    if start is None:
        return None
    data = start.training.get("data") or {}
    return {
        "from": start.given,
        "checkpoint": str(start.path),
        "variant": start.config.variant,
        "labels": list(start.config.labels),
        "image_size": start.config.image_size,
        "input": {k: _plain(v) for k, v in start.input_contract(fit_options).items()},
        "trained_on": {k: data.get(k) for k in ("source", "title", "fingerprint")},
        "best_val_macro_auc": start.training.get("best_val_macro_auc"),
        "epochs": start.training.get("epochs"),
        "its_start": start.training.get("pretrained"),
        **start.transfer_to(config).summary(),
    }


_UNREADABLE = (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError)


def _is_project_checkpoint(path: Path) -> bool:
    """Whether `path` is a cxr-attention checkpoint (not timm weights); read lazily (mmap)."""
    if path.suffix == ".safetensors" or not zipfile.is_zipfile(path):
        return False
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except _UNREADABLE:
        return False  # timm's reader says what is wrong with it
    return isinstance(data, dict) and data.get("format") == FORMAT


@functools.lru_cache(maxsize=8)
def _open(path: str, _mtime_ns: int, _size: int, given: str) -> StartingModel | None:
    """The start in `path` (None for timm weights), read once while the file is unchanged."""
    if not _is_project_checkpoint(Path(path)):
        return None
    checkpoint = load_checkpoint(path)
    return StartingModel(given, Path(path), checkpoint.model, checkpoint.training)


@functools.lru_cache(maxsize=8)
def _plan(start: StartingModel, config: ModelConfig) -> Transfer:
    with torch.device("meta"):
        model = AttentionClassifier(config)
    return plan_transfer(start.given, start.model, start.model.state_dict(), model)


def _words(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
