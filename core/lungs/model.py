"""The lung-field segmenter: a small U-Net over a timm encoder, and its self-describing checkpoint.

The network is segmentation-models-pytorch's `Unet` (Ronneberger et al. 2015) with a timm
MobileNetV2 encoder (`tu-mobilenetv2_100`, about 2.6 M parameters with the slim decoder below):
a maintained implementation rather than a hand-written one, and a timm encoder like the
classifiers'. It reads one grey channel, the film padded to a square (never stretched) at
`image_size`, standardised per film (`standardise`), and gives one logit per pixel: lung field or
not (both lungs in one mask, as the manual masks it learnt draw them).

Checkpoint (one `torch.save` of plain data, loaded with `weights_only=True`)::

    {"format": "cxr-attention-lungs", "format_version": 1,
     "model": LungModelConfig as a dict, "state_dict": {...},
     "training": {"data", "epochs", "best_epoch", "val_dice", "split", ...},
     "card": {what it learnt, its figures, the licence of its masks} (may be empty),
     "familiar": optional, the description of the films it knows (`core.lungs.familiar`),
     "created", "package_version", "quantized": optional (8-bit copy, `core.models.compact`)}
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cxr_attention import core
from cxr_attention.core.errors import CheckpointError, ConfigError
from cxr_attention.core.models.checkpoint import load_state_strict, read_checkpoint_data
from cxr_attention.core.models.compact import QUANTIZED, compact_checkpoint, expand_weights

FORMAT = "cxr-attention-lungs"
FORMAT_VERSION = 1
FAMILIAR = "familiar"  # checkpoint key: the description of the films it knows (core.lungs.familiar)


@dataclass(frozen=True)
class LungModelConfig:
    """How the segmenter is built and what it reads."""

    encoder: str = "tu-mobilenetv2_100"  # segmentation-models-pytorch encoder name
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16, 16)  # slim: the fields are large
    image_size: int = 128  # side of the square view it reads, in pixels
    threshold: float = 0.5  # probability at which a pixel belongs to the lung field

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"decoder_channels": list(self.decoder_channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LungModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown lung-model settings {unknown}")
        values = dict(data)
        if "decoder_channels" in values:
            values["decoder_channels"] = tuple(int(c) for c in values["decoder_channels"])
        return cls(**values)


def build_segmenter(config: LungModelConfig) -> nn.Module:
    """The U-Net, randomly initialised (no download: weights come from a lung checkpoint)."""
    import segmentation_models_pytorch as smp

    try:
        return smp.Unet(
            config.encoder,
            encoder_weights=None,
            encoder_depth=len(config.decoder_channels),
            decoder_channels=list(config.decoder_channels),
            in_channels=1,
            classes=1,
        )
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot build a lung segmenter on {config.encoder!r}: {exc}") from None


def standardise(views: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float views (B, 1, S, S) -> zero mean, unit variance per film.

    Per-film statistics make the segmenter indifferent to exposure and to how a site windows its
    films; a flat image (no variance) comes out all zero rather than dividing by nothing.
    """
    x = views.float()
    if views.dtype == torch.uint8:
        x = x / 255.0
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / std.clamp_min(1e-3)


@dataclass
class LungModel:
    """A loaded segmenter (eval mode) with its metadata."""

    network: nn.Module
    config: LungModelConfig
    training: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    identity: str = ""  # sha256 of what finds the fields (weights, settings), 16 hex digits
    path: Path | None = None
    familiarity: Any = None  # core.lungs.familiar.Familiarity: the films it knows (None: none)

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @torch.inference_mode()
    def probabilities(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 views (B, 1, S, S) at `image_size` -> lung-field probability (B, S, S) float32."""
        device = next(self.network.parameters()).device
        logits = self.network(standardise(views.to(device)))
        return torch.sigmoid(logits.float())[:, 0].cpu()


def lung_payload(
    network: nn.Module,
    config: LungModelConfig,
    training: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
    familiarity: Any = None,
) -> dict[str, Any]:
    """The plain-data dict a lung checkpoint holds (`familiarity`: a `Familiarity`, or None)."""
    optional = {FAMILIAR: familiarity.to_dict()} if familiarity is not None else {}
    return optional | {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
        "training": dict(training or {}),
        "card": dict(card or {}),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "package_version": core.__version__,
    }


def save_lung_model(path: str | Path, payload: dict[str, Any], compact: bool = False) -> Path:
    """Write a lung checkpoint atomically; `compact` stores 8-bit weights (about a quarter)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(compact_checkpoint(payload) if compact else payload, tmp)
    tmp.replace(path)
    return path


def load_lung_model(path: str | Path, device: str | torch.device = "cpu") -> LungModel:
    """Rebuild a segmenter exactly as saved; `CheckpointError` names what is wrong."""
    path = Path(path)
    data = read_checkpoint_data(path, expected_format=FORMAT, what="lung model")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has lung-model format version {version}; this cxr-attention reads "
            f"version {FORMAT_VERSION}"
        )
    try:
        config = LungModelConfig.from_dict(data["model"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid lung-model config ({exc})") from None
    network = build_segmenter(config)
    load_state_strict(network, expand_weights(data["state_dict"], data.get(QUANTIZED)), str(path))
    network.to(device).eval()
    familiarity = None
    if data.get(FAMILIAR) is not None:
        from cxr_attention.core.lungs.familiarity import Familiarity

        try:
            familiarity = Familiarity.from_dict(data[FAMILIAR])
        except (CheckpointError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: its description of familiar films is damaged ({exc})"
            ) from None
    return LungModel(
        network=network,
        config=config,
        training=data.get("training") or {},
        card=data.get("card") or {},
        created=str(data.get("created", "")),
        identity=weights_identity(data),
        path=path,
        familiarity=familiarity,
    )


def weights_identity(data: dict[str, Any]) -> str:
    """A short fingerprint of what decides a lung model's fields: its settings and weights (not
    its card, which may be rewritten); what a classifier with a lung prior records of it."""
    digest = hashlib.sha256(repr(sorted(data["model"].items())).encode())
    for name in sorted(data["state_dict"]):
        tensor = data["state_dict"][name]
        digest.update(name.encode())
        digest.update(
            tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()[:16]
