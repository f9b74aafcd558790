"""The backbone registry: the paper's four CNNs by name, with the figures the paper reports.

Any other timm model name also works (`describe_backbone` then returns a generic entry); these four
drive presets, the `models` table, sweeps and the parametrized tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    """A backbone the project knows by name."""

    name: str  # timm model name
    title: str  # how reports and the app write it
    paper_micro_auc: float | None = None  # micro-AUC the paper reports without attention
    paper_micro_auc_attention: float | None = None  # ... and with spatial attention
    paper_note: str = ""


PAPER_BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        Backbone("resnet101", "ResNet101", 0.853, 0.872),
        Backbone("efficientnet_b0", "EfficientNet-B0", paper_note="minimal change with attention"),
        Backbone("efficientnet_b3", "EfficientNet-B3", paper_note="minimal change with attention"),
        Backbone("mobilenetv2_100", "MobileNetV2", 0.818, 0.826),
    )
}


def describe_backbone(name: str) -> Backbone:
    """The registry entry of a backbone, or a plain one for any other timm name."""
    return PAPER_BACKBONES.get(name, Backbone(name, name))
