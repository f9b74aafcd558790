"""The lung model's description of the films it knows, as its checkpoint keeps it: a detector of
pooled features (`core.trust.ood`) and the two thresholds it warns and refuses above. Fitted and
used by `core.lungs.familiar`; here apart so that reading a checkpoint needs no network code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cxr_attention.core.trust.ood import OodDetector


@dataclass(frozen=True)
class Familiarity:
    """The description and its two thresholds (see the module docstring)."""

    detector: OodDetector
    warn: float
    refuse: float

    def scores(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        """Unfamiliarity scores (B,) of pooled features (`lung_pass`)."""
        return self.detector.score(features).numpy()

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector.to_dict(), "warn": self.warn, "refuse": self.refuse}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Familiarity:
        return cls(
            OodDetector.from_dict(data["detector"]), float(data["warn"]), float(data["refuse"])
        )
