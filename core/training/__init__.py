"""The training loop: `FitConfig` says what to train, `fit(config)` trains it into a run folder."""

from core.training.config import FitConfig
from core.training.loop import fit

__all__ = ["FitConfig", "fit"]
