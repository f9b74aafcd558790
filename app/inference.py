"""Scoring one radiograph with one model, as the app does it (no Streamlit here).

The Explore page and `benchmarks/bench_app_latency.py` both call these functions, so the benchmark
measures the app's own path. The science lives in core: preprocessing (`core.data.preprocess`), the
model (`core.models`), explanation maps (`core.explain`), calibrated probabilities and the
out-of-distribution verdict (`core.trust`, through `Checkpoint.probabilities` and
`core.inference.score_views`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.explain.localization import peak_of
from cxr_attention.core.inference import score_views
from cxr_attention.core.models.checkpoint import Checkpoint, load_checkpoint
from cxr_attention.core.trust.ood import OodVerdict


@dataclass
class LoadedModel:
    """A checkpoint in eval mode plus the lock that serialises its explanations.

    One instance is shared by every app session (`st.cache_resource`); gradient-based explanations
    put hooks on the shared modules, so they run one at a time per model.
    """

    checkpoint: Checkpoint
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def model(self) -> torch.nn.Module:
        return self.checkpoint.model

    @property
    def labels(self) -> tuple[str, ...]:
        return self.checkpoint.labels

    @property
    def image_size(self) -> int:
        return self.checkpoint.config.image_size

    @property
    def thresholds(self) -> dict[str, float]:
        return self.checkpoint.thresholds

    @property
    def calibrated(self) -> bool:
        """Whether probabilities are temperature-scaled on validation (older checkpoints: no)."""
        return self.checkpoint.calibrated


@dataclass(frozen=True)
class Scores:
    """One model's output for one image."""

    probabilities: np.ndarray  # (L,) probabilities (calibrated when the checkpoint is)
    maps: dict[str, np.ndarray]  # attention gate name -> (h, w) float32 in [0, 1]; {} for baselines


def load_model(path: str | Path) -> LoadedModel:
    return LoadedModel(load_checkpoint(path))


def view_for(pixels: np.ndarray, size: int) -> np.ndarray:
    """The image as a model of input `size` sees it: (size, size) uint8 (core's one path)."""
    return model_view(pixels, size)


def score_view(loaded: LoadedModel, view: np.ndarray, ablate_attention: bool = False) -> Scores:
    """Probabilities and attention maps for a (S, S) uint8 model view, S = the model's size."""
    model = loaded.checkpoint.model
    x = config_input(view[None], loaded.checkpoint.config)
    with loaded.lock, torch.inference_mode():
        out = model.forward_with_maps(x, ablate_attention=ablate_attention)
    probabilities = loaded.checkpoint.probabilities(out.logits)[0].numpy()
    maps = {} if ablate_attention else {k: v[0, 0].float().numpy() for k, v in out.maps.items()}
    return Scores(probabilities, maps)


@dataclass(frozen=True)
class ExplainedMap:
    """One label's explanation of one image."""

    heat: np.ndarray  # (S, S) float32 in [0, 1] at model-view resolution
    scale: float  # what the map was divided by: heat * scale is the raw value (shared scales)
    stage: str  # where the map comes from ("stage4", "input", "class", ...)
    method: str
    map_size: tuple[int, int] = (0, 0)  # (h, w) of the map before upsampling, e.g. (8, 8)
    order: np.ndarray | None = None  # (S, S): a class map's log-odds, where its heat ties at 1.0

    @property
    def raw(self) -> np.ndarray:
        return self.heat * self.scale

    @property
    def peak(self) -> tuple[int, int] | None:
        """(row, column) where the map peaks (`core.explain.localization.peak_of`); None: flat."""
        return peak_of(self.heat, self.order)


def explain_view(
    loaded: LoadedModel, view: np.ndarray, label: str, method: str, ablate_attention: bool = False
) -> ExplainedMap:
    """One label's explanation map for a (S, S) uint8 model view (`core.explain`)."""
    return analyse_view(loaded, view, label, method, ablate_attention).explanation


@dataclass(frozen=True)
class Analysis:
    """What one Explore column needs from one model: every label's probability and one map."""

    probabilities: np.ndarray  # (L,) probabilities (calibrated when the checkpoint is)
    explanation: ExplainedMap
    ood: OodVerdict | None = None  # None when the checkpoint does not describe its training films


def ood_verdict(loaded: LoadedModel, view: np.ndarray) -> OodVerdict | None:
    """Whether a (S, S) uint8 model view is unlike the model's training films (the model as
    trained: gates never ablated); None for a checkpoint without an OOD description."""
    if loaded.checkpoint.ood is None:
        return None
    with loaded.lock:
        verdicts = score_views(loaded.checkpoint, view[None]).ood
    return verdicts[0] if verdicts else None


FINE_CELLS = 8  # a map of fewer cells a side blurs a lesion of a few percent into one cell


def fine_stage(model, method: str, size: int, lung_weight: float = 0.0) -> str | None:
    """The deepest stage whose map is at least FINE_CELLS a side at `size` px, for a gate
    ("attention") or Grad-CAM; None: the method's default (the final map, or a class head's).

    At 128 px a stride-32 backbone's final map is 4 x 4: the app shows its stage-3 gate and
    Grad-CAM at 8 x 8 instead, where the model has them. Except for a linear head trained with
    the lung term (`lung_weight` > 0): the term held its final-stage Grad-CAM inside the lungs
    (every gate too), and the in-lung figures measure that map, so that is the one shown.
    """
    if method not in ("attention", "gradcam") or (method == "attention" and model.class_specific):
        return None
    if method == "gradcam" and lung_weight > 0 and not model.class_specific:
        return None
    names = model.gate_names if method == "attention" else [s.name for s in model.stages]
    cells = {s.name: size // s.reduction for s in model.stages}
    fine = [name for name in names if cells.get(name, 0) >= FINE_CELLS]
    deepest = names[-1] if names else None
    if not fine or fine[-1] == deepest:
        return None
    return fine[-1]


def analyse_view(
    loaded: LoadedModel, view: np.ndarray, label: str, method: str, ablate_attention: bool = False
) -> Analysis:
    """Probabilities and `label`'s `method` map for a (S, S) uint8 model view, in one pass.

    `core.explain` returns the logits of the forward pass behind the map (attention, Grad-CAM and
    Integrated Gradients all run one), so the probabilities cost nothing extra; the OOD verdict
    takes one more plain forward pass when the checkpoint has an OOD description. With
    `ablate_attention` the model runs with every gate set to 1 (the teaching switch); the OOD
    verdict always comes from the model as trained.
    """
    from cxr_attention.core.explain import explain

    model = loaded.checkpoint.model
    x = config_input(view[None], loaded.checkpoint.config)
    options = {"ablate_attention": True} if ablate_attention else {}
    stage = fine_stage(model, method, view.shape[0], loaded.checkpoint.lung_weight)
    if stage is not None:
        options["stage"] = stage
    with loaded.lock:
        result = explain(model, x, label, method, **options)
    if result.logits is None:  # a method without a forward pass (e.g. "random")
        probabilities = score_view(loaded, view, ablate_attention).probabilities
    else:
        probabilities = loaded.checkpoint.probabilities(result.logits.detach())[0].cpu().numpy()
    explained = ExplainedMap(
        heat=result.map(0),
        scale=float(result.scale[0, 0]),
        stage=result.stage,
        method=result.method,
        map_size=tuple(result.map_size),
        order=None if result.order is None else result.ranked(0),
    )
    return Analysis(probabilities, explained, ood_verdict(loaded, view))
