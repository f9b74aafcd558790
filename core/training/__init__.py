"""The training loop: `FitConfig` says what to train, `fit(config)` trains it into a run folder."""

from cxr_attention.core.training.config import FitConfig
from cxr_attention.core.training.loop import fit

__all__ = ["FitConfig", "fit"]
