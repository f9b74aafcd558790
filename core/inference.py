"""Batched scoring of radiograph files with one or several checkpoints (`predict`, the app, scripts).

The path of one image: `load_radiograph` (PNG/JPEG/DICOM -> float [0, 1]) -> `model_view` (uint8
square at each model's input size) -> batched `config_input` -> forward in `torch.inference_mode`
-> probabilities, calibrated by the checkpoint's validation temperatures when it has them
(`Checkpoint.probabilities`), and, when the checkpoint describes its training films, each image's
out-of-distribution verdict from the same forward pass (`core.trust`). Files are decoded by a few threads ahead of the model (OpenCV, pydicom's decoders and
PyTorch release the GIL), so a folder runs about as fast as the slower of decoding and the model,
not the sum of both; only the small uint8 views wait in memory, never the full films.

A file that cannot be read becomes an `ImageFailure` (its one-line reason) and the others go on.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cxr_attention.core.data.preprocess import config_input, model_view
from cxr_attention.core.data.radiograph import RadiographMeta, load_radiograph
from cxr_attention.core.errors import CheckpointError, ConfigError, RadiographError
from cxr_attention.core.lungs.model import LungModel
from cxr_attention.core.lungs.segment import LungFields, segment_lungs
from cxr_attention.core.lungs.views import lung_model_for, prior_input, refusal
from cxr_attention.core.models.checkpoint import Checkpoint, load_checkpoint
from cxr_attention.core.trust.features import pooled_forward
from cxr_attention.core.trust.ood import OodVerdict


@dataclass(frozen=True)
class ScoringModel:
    """A loaded checkpoint with the short name its outputs are reported under."""

    tag: str
    checkpoint: Checkpoint

    @property
    def labels(self) -> tuple[str, ...]:
        return self.checkpoint.labels

    @property
    def image_size(self) -> int:
        return int(self.checkpoint.config.image_size)


@dataclass(frozen=True)
class PreparedImage:
    """One decoded radiograph, kept only as its model views (uint8 (S, S) per input size S), and
    its lung fields when a model with a lung prior will read it."""

    source: str
    meta: RadiographMeta
    views: dict[int, np.ndarray]
    lungs: LungFields | None = None

    def view_for(self, config) -> np.ndarray:
        """The view as the model of `config` sees it (its size, its lung prior)."""
        return prior_input(self.views[int(config.image_size)], config, self.lungs, self.source)


@dataclass(frozen=True)
class ImageFailure:
    """A file that could not be scored, with the one-line reason (it starts with the file name)."""

    source: str
    reason: str


@dataclass
class ScoredBatch:
    """Up to `batch_size` images in input order, each model's probabilities for them."""

    images: list[PreparedImage]
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # tag -> (B, L) float32
    # tag -> one verdict per image, or None for a checkpoint without an OOD description
    ood: dict[str, list[OodVerdict] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ViewScores:
    """One model's output for a batch of views."""

    probabilities: np.ndarray  # (B, L) float32, calibrated when the checkpoint is
    ood: list[OodVerdict] | None  # one per view; None without an OOD description


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" -> CUDA when present, else CPU; any other name as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA GPU is available; use cpu")
    return device


def model_tag(path: Path) -> str:
    """A short name for a checkpoint: its run folder for `RUN/checkpoint.pt`, else its stem."""
    if path.stem in ("checkpoint", "last", "best") and path.parent.name:
        return path.parent.name
    return path.stem


def load_scoring_models(
    paths: Sequence[str | Path], device: torch.device | str = "cpu"
) -> list[ScoringModel]:
    """Load every checkpoint (a run folder means its checkpoint.pt), with unique tags."""
    models: list[ScoringModel] = []
    used: set[str] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir() and (path / "checkpoint.pt").is_file():
            path = path / "checkpoint.pt"
        checkpoint = load_checkpoint(path, device=device)
        tag, n = model_tag(path), 2
        while tag in used:
            tag, n = f"{model_tag(path)}-{n}", n + 1
        used.add(tag)
        models.append(ScoringModel(tag, checkpoint))
    if not models:
        raise CheckpointError("no checkpoint given")
    return models


def prepare_image(
    source: str | Path | bytes,
    sizes: Iterable[int],
    *,
    name: str | None = None,
    allow_any_modality: bool = False,
    lung_model: LungModel | None = None,
    refuse_implausible: bool = True,
) -> PreparedImage:
    """Decode one radiograph and make its model view at each size; with `lung_model`, find its
    lung fields too and refuse it when they are not plausible (a model with a lung prior will
    read it). `refuse_implausible=False` keeps such a film for models that read the whole film:
    `view_for` still refuses it to a model with a lung prior. Raises `RadiographError`."""
    radiograph = load_radiograph(source, name=name, allow_any_modality=allow_any_modality)
    views = {size: model_view(radiograph.pixels, size) for size in sorted(set(sizes))}
    label = name or (str(source) if not isinstance(source, bytes) else radiograph.meta.source_name)
    fields = segment_lungs(radiograph, lung_model) if lung_model is not None else None
    if refuse_implausible and fields is not None and not fields.plausible:
        raise RadiographError(refusal(label, fields))
    return PreparedImage(label, radiograph.meta, views, fields)


def default_workers(device: torch.device | str = "cpu") -> int:
    """Decoding threads: on a GPU up to 4 (decoding is the bottleneck there); on the CPU one, so
    decoding overlaps the forward pass without fighting PyTorch's own threads for the cores."""
    if torch.device(device).type == "cuda":
        return max(1, min(4, os.cpu_count() or 1))
    return 1


def iter_prepared(
    paths: Iterable[str | Path],
    sizes: Iterable[int],
    *,
    workers: int = 1,
    allow_any_modality: bool = False,
    lung_model: LungModel | None = None,
    refuse_implausible: bool = True,
) -> Iterator[PreparedImage | ImageFailure]:
    """Prepare files in order: `workers` threads decode ahead (at most 4 x workers + 2 files in
    flight); `workers=0` decodes in the calling thread. `lung_model`, `refuse_implausible`: see
    `prepare_image`."""
    sizes = tuple(sorted(set(sizes)))
    if workers < 0:
        raise ConfigError(f"workers must be 0 or more, got {workers}")

    def work(path: str | Path) -> PreparedImage | ImageFailure:
        try:
            return prepare_image(
                path,
                sizes,
                allow_any_modality=allow_any_modality,
                lung_model=lung_model,
                refuse_implausible=refuse_implausible,
            )
        except RadiographError as exc:
            return ImageFailure(str(path), str(exc))

    if workers == 0:
        yield from (work(path) for path in paths)
        return
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool:
        for path in paths:
            pending.append(pool.submit(work, path))
            if len(pending) > 4 * workers + 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def score_views(
    checkpoint: Checkpoint, views: np.ndarray, device: torch.device | str = "cpu"
) -> ViewScores:
    """Probabilities and OOD verdicts for a uint8 batch of model views (B, S, S), in one pass.

    Without an OOD description the plain forward runs; with one, the pooled features of every
    stage are kept on the way (`core.trust.features.pooled_forward`)."""
    model = checkpoint.model
    x = config_input(torch.from_numpy(np.ascontiguousarray(views)), checkpoint.config, device)
    with torch.inference_mode():
        if checkpoint.ood is None:
            logits, verdicts = model(x), None
        else:
            out = pooled_forward(model, x)
            logits, verdicts = out.logits, checkpoint.ood.verdicts(out.features)
        probabilities = checkpoint.probabilities(logits).cpu().numpy()
    return ViewScores(probabilities, verdicts)


def predict_views(
    model: torch.nn.Module, checkpoint: Checkpoint, views: np.ndarray, device: torch.device | str
) -> np.ndarray:
    """Probabilities (B, L) float32 for a uint8 batch of model views (B, S, S): sigmoid of the
    logits, divided first by the checkpoint's validation temperatures when it has them."""
    x = config_input(torch.from_numpy(np.ascontiguousarray(views)), checkpoint.config, device)
    with torch.inference_mode():
        logits = model(x)
    return checkpoint.probabilities(logits).cpu().numpy()


def score_batches(
    models: Sequence[ScoringModel],
    items: Iterable[PreparedImage | ImageFailure],
    batch_size: int = 32,
    device: torch.device | str = "cpu",
) -> Iterator[ScoredBatch | ImageFailure]:
    """Group prepared images into batches and score them with every model, in input order.

    Failures pass straight through (before the batch that was filling when they arrived).
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    batch: list[PreparedImage] = []
    for item in items:
        if isinstance(item, ImageFailure):
            yield item
            continue
        batch.append(item)
        if len(batch) == batch_size:
            yield _score(models, batch, device)
            batch = []
    if batch:
        yield _score(models, batch, device)


def _score(
    models: Sequence[ScoringModel], batch: list[PreparedImage], device: torch.device | str
) -> ScoredBatch:
    scored = ScoredBatch(batch)
    for m in models:
        views = np.stack([image.view_for(m.checkpoint.config) for image in batch])
        result = score_views(m.checkpoint, views, device)
        scored.probabilities[m.tag], scored.ood[m.tag] = result.probabilities, result.ood
    return scored


def predict_files(
    models: Sequence[ScoringModel],
    paths: Iterable[str | Path],
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    workers: int | None = None,
    allow_any_modality: bool = False,
) -> Iterator[ScoredBatch | ImageFailure]:
    """Score files with every model: batches of results and failures, in input order.

    `workers`: decoding threads (None: `default_workers(device)`; 0: decode inline)."""
    sizes = {m.image_size for m in models}
    if workers is None:
        workers = default_workers(device)
    lung_model = lung_model_for(m.checkpoint.config for m in models)
    items = iter_prepared(
        paths, sizes, workers=workers, allow_any_modality=allow_any_modality, lung_model=lung_model
    )
    yield from score_batches(models, items, batch_size=batch_size, device=device)


def thresholds_for(checkpoint: Checkpoint, rule: str = "youden") -> dict[str, float]:
    """Per-label operating points: "youden" or "f1" (chosen on validation, stored in the
    checkpoint; 0.5 where absent) or a fixed probability given as text, e.g. "0.3"."""
    if rule in ("youden", "f1"):
        return checkpoint.validation_thresholds(rule)
    try:
        value = float(rule)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"threshold {rule!r}: use youden, f1 or a probability in [0, 1]")
    return dict.fromkeys(checkpoint.labels, value)


def has_validation_thresholds(checkpoint: Checkpoint) -> bool:
    """Whether the checkpoint carries thresholds chosen on validation for every label."""
    chosen = checkpoint.training.get("thresholds") or {}
    return all(label in chosen for label in checkpoint.labels)


def positive_labels(
    probabilities: np.ndarray, labels: Sequence[str], thresholds: dict[str, float]
) -> list[str]:
    """Labels whose probability reaches their threshold, most probable first."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    return [labels[i] for i in order if probabilities[i] >= thresholds[labels[i]]]


def explanation_maps(
    model: ScoringModel,
    views: np.ndarray,
    indices: Sequence[int],
    method: str,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Maps float32 (B, K, S, S) in [0, 1] for a uint8 batch of views and the label indices asked
    for, through `core.explain.explain` (attention: the final gate; gradcam: raw-logit Grad-CAM)."""
    from cxr_attention.core.explain import explain

    x = config_input(torch.from_numpy(np.ascontiguousarray(views)), model.checkpoint.config, device)
    explanation = explain(model.checkpoint.model, x, list(indices), method)
    return explanation.maps.detach().float().cpu().numpy()
