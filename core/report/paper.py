"""Published numbers that the comparison report prints beside ours (sources in REFERENCE.md).

The paper's micro-AUCs per backbone live in the backbone registry (`core.models.registry`), the one
source of truth for them; this module holds the rest and one accessor for all. Wang et al.'s
localization table lives with the localization code (`core.explain.reference`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cxr_attention.core.models.registry import PAPER_BACKBONES, describe_backbone

PAPER_CITATION = "the paper (seed/paper-abstract.txt): spatial attention on ChestX-ray14, 13 labels"

# Largest per-class AUC gains with attention that the paper reports (AUC points, attention - none).
PAPER_LARGEST_GAINS: dict[str, float] = {"Emphysema": 0.05, "Effusion": 0.04, "Pneumothorax": 0.04}

# Published mean (macro) AUC over the 14 classes on the official split, for context.
PUBLISHED_MACRO_AUC: tuple[tuple[str, float], ...] = (
    ("Wang et al. 2017", 0.745),
    ("Yao et al. 2018", 0.761),
    ("Baltruschat et al.", 0.806),
    ("Guendel et al.", 0.807),
    ("SwinCheX", 0.810),
    ("Ma et al.", 0.817),
    ("Hermoza et al.", 0.821),
    ("XProtoNet", 0.822),
    ("Xiao et al. 2023 (MAE ViT-B)", 0.830),
    ("Goel et al. 2024", 0.834),
)


@dataclass(frozen=True)
class PaperResult:
    """What the paper reports for one backbone: micro-AUC without and with attention, or a note."""

    backbone: str
    title: str
    micro_auc: float | None
    micro_auc_attention: float | None
    note: str

    @property
    def difference(self) -> float | None:
        if self.micro_auc is None or self.micro_auc_attention is None:
            return None
        return self.micro_auc_attention - self.micro_auc


def paper_result(backbone: str) -> PaperResult | None:
    """The paper's figures for a backbone, or None when the paper did not use it."""
    if backbone not in PAPER_BACKBONES:
        return None
    entry = describe_backbone(backbone)
    return PaperResult(
        backbone,
        entry.title,
        entry.paper_micro_auc,
        entry.paper_micro_auc_attention,
        entry.paper_note,
    )
