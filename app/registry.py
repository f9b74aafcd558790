"""The model registry: every checkpoint under the runs folder, grouped by backbone and variant.

A variant is a backbone and an attention kind (`core.models.kinds`): None for the baseline,
"spatial" (the paper's CBAM gate: what the app's attention on/off switch means by default), "cbam"
or "class" (a class-specific head, one map per label).

Models of one collection may differ by their lung prior alone (`ModelConfig.lung_prior`: the film
restricted to its lung fields, or not). Where the others read their lung fields, a model trained
without the prior is the *teaching* model (issue 36): it sees the whole film, and is kept apart,
labelled as such, and never stands in for its variant (`Registry.best`); `Registry.teaching_pairs`
puts it beside the model of the same backbone and kind that has the prior.

Scanning reads each checkpoint's plain data (no model is built); a checkpoint that cannot be read is
kept as a `BrokenRun` with the reason, so one bad file never hides the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import timm

from cxr_attention.core.errors import ConfigError, CxrError
from cxr_attention.core.models.classifier import ModelConfig
from cxr_attention.core.models.kinds import (
    ATTENTION_KINDS,
    CLASS_SPECIFIC,
    DEFAULT_KIND,
    KIND_TITLES,
)
from cxr_attention.core.models.registry import PAPER_BACKBONES, describe_backbone
from cxr_attention.core.runs import LOCALIZATION, METRICS, PREDICTIONS, RunFolder, find_runs

# How a model's title ends, by attention kind (None: the baseline).
VARIANT_SUFFIX: dict[str | None, str] = {
    None: " (baseline)",
    "spatial": " + attention",
    "cbam": " + CBAM",
    "class": " + class attention",
}
KIND_ORDER: tuple[str | None, ...] = (None, *ATTENTION_KINDS)  # baseline first, then as in core
TEACHING_SUFFIX = " · without the lung prior"
PRIOR_WORDS = {  # what a model reads of the film, by lung prior ("teaching": none where others do)
    "mask": "reads the lung fields alone: the film farther than a few pixels from them is black "
    "to it (trained with the lung prior)",
    "crop": "reads the box around the lung fields alone, enlarged to its input (trained with the "
    "lung prior)",
    "teaching": "was trained without the lung prior: it sees the whole film, abdomen, markers "
    "and padding included (kept to show what a model reads when nothing holds it to the lungs)",
}


def check_kind(kind: str | None) -> None:
    """Refuse anything but an attention kind or None (a bool from before kinds, say)."""
    if kind is not None and (not isinstance(kind, str) or kind not in ATTENTION_KINDS):
        raise ConfigError(
            f"attention kind {kind!r}: choose None (baseline) or one of {', '.join(ATTENTION_KINDS)}"
        )


@dataclass(frozen=True)
class ModelEntry:
    """One readable checkpoint and where it came from."""

    run: RunFolder
    config: ModelConfig
    source: str  # the reader: "phantom", "chestxray14", "class_folders", "table" or "unknown"
    collection: str  # what it learnt, in words: "the synthetic phantom", "5,216 paediatric ..."
    data_root: str  # the dataset folder it was trained on ("" when not recorded)
    split: str  # how train/val/test were drawn, as training recorded it
    val_auc: float | None  # best validation macro AUC
    epochs: int | None
    pretrained: str | None
    created: str
    mtime: float  # checkpoint modification time; part of the model cache key
    training: dict[str, Any] = field(repr=False, compare=False, hash=False)
    teaching: bool = False  # trained without the lung prior its collection's other models have

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def checkpoint(self) -> Path:
        return self.run.checkpoint

    @property
    def backbone(self) -> str:
        return self.config.backbone

    @property
    def attention(self) -> bool:
        return self.config.attention

    @property
    def kind(self) -> str | None:
        """The attention kind: None (baseline), "spatial", "cbam" or "class"."""
        return self.config.kind

    @property
    def class_specific(self) -> bool:
        """Whether its own attention maps are per label (a class head), not one for all labels."""
        return self.kind is not None and CLASS_SPECIFIC[self.kind]

    @property
    def kind_title(self) -> str:
        """The mechanism in words: "spatial gate (CBAM, the paper's)", ..., "none (baseline)"."""
        return KIND_TITLES[self.kind] if self.kind else "none (baseline)"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def is_phantom(self) -> bool:
        return self.source == "phantom"

    @property
    def lung_prior(self) -> str:
        """What of the film it reads: "none" (all of it), "mask" or "crop" (`core.data.lung_prior`)."""
        return self.config.lung_prior

    @property
    def prior_words(self) -> str:
        """What of the film the model reads, in words ("" where no model of its collection has a
        lung prior: the whole film, as everywhere there)."""
        key = (
            self.lung_prior if self.lung_prior != "none" else ("teaching" if self.teaching else "")
        )
        return PRIOR_WORDS.get(key, "")

    @property
    def attention_summary(self) -> str:
        """The attention mechanism and where it sits, in one line (model cards)."""
        config = self.config
        if self.kind is None:
            return "none (baseline)"
        if self.class_specific:
            return (
                f"{self.kind_title}: one map per label on the final feature map, "
                f"T = {config.attention_temperature:g}, lambda = {config.attention_lambda:g}"
            )
        stages = ", ".join(map(str, config.attention_stages))
        kernel = config.attention_kernel
        return f"{self.kind_title}: one map for every label, after stages {stages}, kernel {kernel}"

    @property
    def final_map(self) -> str:
        """The final feature map's side at the input size, e.g. "8 x 8 at 128 px (output stride
        16)"; a head on an earlier stage is named (its stride is the backbone's, not recorded)."""
        config = self.config
        if config.head_stage != -1:
            return (
                f"the map of feature stage {config.head_stage} (the head reads that stage, "
                f"before the last: finer), {config.image_size} px input"
            )
        side = -(-config.image_size // config.output_stride)
        return f"{side} x {side} at {config.image_size} px (output stride {config.output_stride})"

    @property
    def backbone_title(self) -> str:
        return describe_backbone(self.backbone).title

    @property
    def title(self) -> str:
        """How the app names the model: ``MobileNetV2 + attention`` (the paper's spatial gate),
        ``MobileNetV2 + CBAM``, ``MobileNetV2 + class attention``, ``MobileNetV2 (baseline)``."""
        return (
            self.backbone_title
            + VARIANT_SUFFIX[self.kind]
            + (TEACHING_SUFFIX if self.teaching else "")
        )

    @property
    def provenance(self) -> str:
        """One line: what it learnt, split, input size and validation AUC."""
        auc = f"val macro AUC {self.val_auc:.3f}" if self.val_auc is not None else "no val AUC"
        split = f", {self.split} split" if self.split else ""
        return f"learnt {self.collection}{split}, {self.image_size} px, {auc}"

    def has(self, filename: str) -> bool:
        return self.run.has(filename)

    @property
    def evaluated(self) -> bool:
        return self.has(METRICS) and self.has(PREDICTIONS)

    @property
    def localized(self) -> bool:
        return self.has(LOCALIZATION)


@dataclass(frozen=True)
class BrokenRun:
    """A run folder whose checkpoint cannot be used, and why (one line)."""

    path: Path
    reason: str


@dataclass
class Registry:
    entries: list[ModelEntry]
    broken: list[BrokenRun]

    @property
    def empty(self) -> bool:
        return not self.entries

    def backbones(self) -> list[str]:
        """Backbones present, the paper's four first in the paper's order."""
        present = {e.backbone for e in self.entries}
        ordered = [b for b in PAPER_BACKBONES if b in present]
        return ordered + sorted(present - set(ordered))

    def labels(self) -> list[str]:
        """Every label any model predicts, in first-seen order."""
        seen: dict[str, None] = {}
        for entry in self.entries:
            seen.update(dict.fromkeys(entry.labels))
        return list(seen)

    def variants(self, backbone: str, kind: str | None) -> list[ModelEntry]:
        """Checkpoints of one backbone and attention kind (None: baseline), best validation AUC
        first; a teaching model (no lung prior where the others have one) after all others."""
        check_kind(kind)
        found = [e for e in self.entries if e.backbone == backbone and e.kind == kind]
        return sorted(found, key=lambda e: (e.teaching, -(e.val_auc or -1.0), -e.mtime, e.name))

    def best(self, backbone: str, kind: str | None) -> ModelEntry | None:
        """The best checkpoint of a backbone with attention of `kind` (None: the baseline); a
        teaching model only when it is the variant's one model."""
        found = self.variants(backbone, kind)
        return found[0] if found else None

    def teaching_pairs(self) -> list[tuple[ModelEntry, ModelEntry]]:
        """(model with the lung prior, teaching model without it) of the same backbone, kind and
        labels, in `backbones` and kind order: the same film before both tells them apart."""
        pairs = []
        for backbone in self.backbones():
            for kind in self.kinds(backbone):
                found = self.variants(backbone, kind)
                prior = next((e for e in found if not e.teaching), None)
                pairs += [
                    (prior, e) for e in found if e.teaching and prior and prior.labels == e.labels
                ]
        return pairs

    def kinds(self, backbone: str) -> list[str | None]:
        """The attention kinds trained for a backbone, None (baseline) first, then core's order."""
        present = {e.kind for e in self.entries if e.backbone == backbone}
        return [k for k in KIND_ORDER if k in present]

    def attention_kind(self, backbone: str) -> str | None:
        """The kind the attention switch turns on by default: the paper's spatial gate when
        trained, else the first kind there is; None when the backbone has no attention model."""
        kinds = [k for k in self.kinds(backbone) if k is not None]
        return DEFAULT_KIND if DEFAULT_KIND in kinds else next(iter(kinds), None)

    def class_specific_backbones(self) -> list[str]:
        """Backbones with a class-specific model, in `backbones` order."""
        return [b for b in self.backbones() if any(CLASS_SPECIFIC[k] for k in self.kinds(b) if k)]

    def side_by_side(self, entries: list[ModelEntry] | None = None) -> list[ModelEntry]:
        """`entries` (all by default) by backbone (`backbones` order), then kind (baseline first),
        a teaching model right after its twin with the lung prior."""
        backbones = {b: i for i, b in enumerate(self.backbones())}
        kinds = {k: i for i, k in enumerate(KIND_ORDER)}
        return sorted(
            self.entries if entries is None else entries,
            key=lambda e: (backbones.get(e.backbone, len(backbones)), kinds[e.kind], e.teaching),
        )

    def evaluated(self) -> list[ModelEntry]:
        return [e for e in self.entries if e.evaluated]

    def localized(self) -> list[ModelEntry]:
        return [e for e in self.entries if e.localized]

    def by_name(self, name: str) -> ModelEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def collections(self) -> list[str]:
        """What the models learnt (`ModelEntry.collection`), the phantom first, then as found."""
        seen = list(dict.fromkeys(e.collection for e in self.entries))
        return sorted(seen, key=lambda c: c != PHANTOM_COLLECTION)

    def within(self, collection: str | None) -> Registry:
        """The models that learnt `collection` (all of them for None or an unknown one)."""
        if collection not in self.collections():
            return self
        return Registry([e for e in self.entries if e.collection == collection], self.broken)

    def any_phantom(self, entries: list[ModelEntry] | None = None) -> bool:
        return any(e.is_phantom for e in (self.entries if entries is None else entries))


PHANTOM_COLLECTION = "the synthetic phantom"
SOURCE_COLLECTIONS = {"phantom": PHANTOM_COLLECTION, "chestxray14": "NIH ChestX-ray14"}


def collection_of(info: dict[str, Any]) -> str:
    """What a run learnt, in words, from its recorded training data: the reader's title, else the
    source's name, else the data folder's name."""
    title = info.get("title") or SOURCE_COLLECTIONS.get(str(info.get("source")))
    if title:
        return str(title)
    root = str(info.get("root") or "")
    return f"the films in {Path(root).name}" if root else "unrecorded data"


def runs_signature(root: Path) -> tuple[tuple[str, float, int], ...]:
    """Paths, modification times and sizes of every checkpoint: changes when runs change."""
    out = []
    for run in find_runs(root):
        try:
            stat = run.checkpoint.stat()
        except OSError:
            continue
        out.append((str(run.checkpoint), stat.st_mtime, stat.st_size))
    return tuple(out)


def scan_runs(root: str | Path) -> Registry:
    """Read every run folder under `root` (no models built; broken ones listed with the reason)."""
    from cxr_attention.core.models.checkpoint import read_checkpoint_data

    entries: list[ModelEntry] = []
    broken: list[BrokenRun] = []
    for run in find_runs(root):
        try:
            data = read_checkpoint_data(run.checkpoint)
            config = ModelConfig.from_dict(data["model"])
        except CxrError as exc:
            broken.append(BrokenRun(run.path, str(exc)))
            continue
        except TypeError as exc:  # a config dict with missing fields
            broken.append(BrokenRun(run.path, f"invalid model config ({exc})"))
            continue
        if not timm.is_model(config.backbone):
            broken.append(
                BrokenRun(run.path, f"backbone {config.backbone!r} is unknown to this timm")
            )
            continue
        entries.append(_entry(run, config, data))
    return Registry(mark_teaching(entries), broken)


def mark_teaching(entries: list[ModelEntry]) -> list[ModelEntry]:
    """The entries, those without a lung prior marked `teaching` where another model of their
    collection reads its lung fields."""
    with_prior = {e.collection for e in entries if e.lung_prior != "none"}
    return [
        replace(e, teaching=True) if e.lung_prior == "none" and e.collection in with_prior else e
        for e in entries
    ]


def describe_split(split: Any) -> str:
    """How the data were split, in a few words: "official (train 348 / val 40 / test 92)".

    `fit` records a dict (method, seed, val_fraction, sizes); older runs may hold a plain string.
    """
    if not split:
        return ""
    if not isinstance(split, dict):
        return str(split)
    words = str(split.get("method") or "recorded")
    sizes = split.get("sizes") or {}
    if sizes:
        words += " (" + " / ".join(f"{k} {v}" for k, v in sizes.items()) + ")"
    return words


def _entry(run: RunFolder, config: ModelConfig, data: dict[str, Any]) -> ModelEntry:
    training = data.get("training") or {}
    info = training.get("data") or {}
    auc = training.get("best_val_macro_auc")
    auc = float(auc) if isinstance(auc, int | float) and math.isfinite(auc) else None
    epochs = training.get("epochs")
    return ModelEntry(
        run=run,
        config=config,
        source=str(info.get("source") or "unknown"),
        collection=collection_of(info),
        data_root=str(info.get("root") or ""),
        split=describe_split(info.get("split")),
        val_auc=auc,
        epochs=int(epochs) if isinstance(epochs, int) else None,
        pretrained=training.get("pretrained"),
        created=str(data.get("created", "")),
        mtime=run.checkpoint.stat().st_mtime,
        training=training,
    )
