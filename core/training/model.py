"""The classifier a run trains, from its `FitConfig`, with or without pretrained weights.

Pretrained weights come from a local file (`--pretrained PATH`, timm's `.safetensors` or a `.pth`
state_dict) or, with `--pretrained imagenet`, from timm's default ImageNet weights on the Hugging
Face hub (cached; offline it fails at once: see core.models.imagenet). Without either the backbone
starts from random initialisation, and the run says so. timm loads backbone weights non-strictly
(the ImageNet head is dropped), so a file for another architecture whose tensor names simply do not
match would load nothing without complaint; `check_weight_coverage` refuses that.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import timm
import torch
from safetensors import SafetensorError
from timm.models import load_state_dict

from cxr_attention.core.errors import PretrainedWeightsError
from cxr_attention.core.models.classifier import (
    AttentionClassifier,
    ModelConfig,
    check_backbone_name,
    missing_weights_error,
)
from cxr_attention.core.models.imagenet import hub_weights, imagenet_weights_file, is_imagenet
from cxr_attention.core.training.config import FIT_OPTIONS, FitConfig
from cxr_attention.core.training.start import open_start, start_line, with_input_contract

log = logging.getLogger(__name__)

# What torch.load and safetensors raise for a file that is not readable weights.
_UNREADABLE = (
    OSError,
    RuntimeError,
    ValueError,
    EOFError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    SafetensorError,
    IndexError,  # torch's unpickler on a text file: "pop from empty list"
    KeyError,
)


def model_config(config: FitConfig, labels: Sequence[str], lung_identity: str = "") -> ModelConfig:
    """The checkpoint's model description for this run, whose data names `labels` (reading films
    as its --pretrained project model does, when it starts from one); `lung_identity` names the
    lung model whose fields a run with a lung prior learnt on."""
    mc = ModelConfig(
        backbone=config.backbone,
        labels=tuple(labels),
        attention=config.attention,
        attention_kind=config.attention_kind,
        attention_temperature=config.attention_temperature,
        attention_lambda=config.attention_lambda,
        output_stride=config.output_stride,
        head_stage=config.head_stage,
        attention_stages=config.attention_stages,
        attention_kernel=config.attention_kernel,
        attention_normalise=config.attention_normalise,
        attention_pool=config.attention_pool,
        image_size=config.image_size,
        drop_rate=config.drop_rate,
        lung_prior=config.lung_prior,
        lung_model=lung_identity if config.uses_lungs else "",
    )
    return with_input_contract(mc, config.pretrained, FIT_OPTIONS)


def build_model(
    config: FitConfig, labels: Sequence[str], lung_identity: str = ""
) -> AttentionClassifier:
    """A fresh classifier for `labels` (the data's, in order); backbone weights from
    `config.pretrained` when given."""
    mc = model_config(config, labels, lung_identity)
    if config.pretrained is None:
        log.info("no --pretrained file: %s starts from random initialisation", mc.backbone)
        return AttentionClassifier(mc)
    start = open_start(config.pretrained)
    if start is not None:
        model = AttentionClassifier(mc)
        transfer = start.transfer_to(mc)
        transfer.apply(model)
        log.info("%s", start_line(start, transfer, mc, FIT_OPTIONS))
        return model
    path = check_pretrained(config, mc.in_chans)
    model = AttentionClassifier(mc, pretrained_file=str(path))
    if is_imagenet(config.pretrained):
        log.info("backbone weights: ImageNet, %s (%s)", hub_weights(mc.backbone).source, path)
    else:
        log.info("backbone weights loaded from %s", path)
    return model


def check_pretrained(config: FitConfig, in_chans: int = 3) -> Path | None:
    """The file of the run's starting weights (None from scratch), checked to exist and fit the
    backbone: `fit` calls it before reading the dataset, so a bad --pretrained fails at once."""
    if config.pretrained is None:
        return None
    if is_imagenet(config.pretrained):
        check_backbone_name(config.backbone)
        return imagenet_weights_file(config.backbone)[0]  # timm's own weights: they fit
    start = open_start(config.pretrained)
    if start is not None:
        start.transfer_to(model_config(config, start.config.labels))  # refuses a mismatch
        return start.path
    path = Path(config.pretrained).expanduser()
    if not path.is_file():
        raise missing_weights_error(path, config.backbone)
    check_weight_coverage(path, config.backbone, in_chans)
    return path


def pretrained_source(config: FitConfig) -> str | None:
    """What a run records as its starting weights: the --pretrained path as given, or for
    `imagenet` the hub weights it stands for (e.g. "hf-hub:timm/resnet101.a1h_in1k")."""
    if is_imagenet(config.pretrained):
        return hub_weights(config.backbone).source
    return config.pretrained


def check_weight_coverage(path: Path, backbone: str, in_chans: int = 3) -> None:
    """Refuse a weight file that lacks any tensor of the backbone (the head aside)."""
    try:
        state = load_state_dict(str(path), weights_only=True)
    except _UNREADABLE as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:120]
        raise PretrainedWeightsError(
            f"pretrained weights {path} cannot be read ({first}): --pretrained takes a run folder "
            "or checkpoint of cxr-attention, timm weights (.safetensors or .pth) or imagenet"
        ) from None
    with torch.device("meta"):  # shapes and names only: no memory, no initialisation cost
        expected = timm.create_model(backbone, num_classes=0, global_pool="", in_chans=in_chans)
    names = [name for name in expected.state_dict() if not name.endswith("num_batches_tracked")]
    missing = [name for name in names if name not in state]
    if missing:
        raise PretrainedWeightsError(
            f"pretrained weights {path} do not fit {backbone}: {len(missing)} of its {len(names)} "
            f"tensors are missing (first: {missing[0]}); use weights saved from timm's {backbone}"
        )


def start_head_at_prior(model: AttentionClassifier, targets: np.ndarray) -> None:
    """Set each label's head bias to its training log-odds, log(p / (1 - p)) (Lin et al., "Focal
    Loss for Dense Object Detection", ICCV 2017, section 4.1).

    The untrained head then already predicts each label's base rate, so the features need not
    carry "this film is normal" everywhere to pull the logits of rare labels down; they are left
    to carry the evidence of findings, which is what a spatial gate can then emphasise
    (docs/attention-diagnosis.md). A label without positives or negatives keeps a bias of 0.
    """
    prevalence = np.asarray(targets, dtype=np.float64).mean(axis=0)
    inside = (prevalence > 0) & (prevalence < 1)
    p = np.clip(prevalence, 1e-4, 1 - 1e-4)
    odds = np.where(inside, np.log(p / (1 - p)), 0.0)
    with torch.no_grad():
        model.head.bias.copy_(torch.as_tensor(odds, dtype=model.head.bias.dtype))
