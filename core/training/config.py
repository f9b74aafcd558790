"""`FitConfig`: everything one training run needs, one field per option, each with its reason.

Preset files (`train/presets/*.yaml`) and the command line fill the same fields; `config.json` in the
run folder records the resolved values, so a run can be repeated or resumed from that file alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from cxr_attention.core.data.lung_prior import LUNG_PRIORS
from cxr_attention.core.data.sources import ReadOptions
from cxr_attention.core.data.table import UNCERTAIN_POLICIES
from cxr_attention.core.errors import ConfigError
from cxr_attention.core.labels import AUTO, check_label_spec
from cxr_attention.core.models.kinds import ATTENTION_KINDS, OUTPUT_STRIDES
from cxr_attention.core.training.device import amp_mode

# Default peak learning rates (AdamW). Fine-tuning ImageNet weights wants a small step; a network
# trained from random initialisation on the phantom learns nothing in 4 epochs at 1e-4 (test macro
# AUC 0.49) and learns at 2e-3 (docs/attention-diagnosis.md).
LR_PRETRAINED = 1e-4
LR_FROM_SCRATCH = 2e-3
# Fine-tuning a model the project trained on chest films (`--pretrained RUN`): its features were
# learnt from scratch at 2e-3 on a few thousand films, and they adapt at that rate too. Starting
# from the real-film zoo's MobileNetV2 on 506 tuberculosis films, 8 epochs: validation AUC 0.736
# at 1e-4, 0.866 at 5e-4, 0.882 at 2e-3; 0.804 from scratch (docs/your-own-films.md).
LR_FROM_PROJECT_MODEL = 2e-3
# The gates' 100 parameters sit behind a batch norm whose weight starts at 0 (CBAM's uniform start),
# so at the backbone's learning rate they barely move in a short run and the maps stay a fixed
# positional picture; a larger step for them alone lets the maps follow the image
# (docs/attention-diagnosis.md).
GATE_LR_SCALE = 10.0

# Fields that change how a run executes but not what it computes: `--resume` may change them.
RUNTIME_FIELDS = frozenset(
    {
        "out",
        "resume",
        "workers",
        "threads",
        "device",
        "progress",
        "stop_after",
        "use_cache",
        "tensorboard",
    }
)


@dataclass(frozen=True)
class FitConfig:
    """One training run (one variant: a backbone with or without spatial attention)."""

    # --- what to train, on what, into where (no defaults) -----------------------------------------
    data: str  # the dataset (core.data.sources): a ChestX-ray14 folder or phantom, class
    # folders (ROOT/[train|val|test]/CLASS/*), or a CSV of image paths and label columns
    out: str  # run folder to write (checkpoint.pt, last.pt, config.json, history.csv)
    backbone: str  # timm name; the paper's: resnet101, efficientnet_b0/_b3, mobilenetv2_100
    # --- data -------------------------------------------------------------------------------------
    labels: str = AUTO  # "auto": the labels the data names (ChestX-ray14's 14, the classes of
    # class folders, a table's label columns); "all14" or "paper13" (ChestX-ray14 without Hernia);
    # or label names, comma-separated, in the order the model outputs them
    views: tuple[str, ...] = ("PA", "AP")  # view positions kept (films of unknown view are kept)
    val_fraction: float = 0.1  # share of the training patients held out for validation
    test_fraction: float = 0.2  # share of patients held out for test when the data gives no test
    # split (no official lists, no test folder or split column)
    uncertain: str = "zeros"  # a table's -1 ("uncertain", CheXpert) labels read as 0 or as 1
    use_cache: bool = True  # read a matching uint8 cache (`cxr-attention cache`) when one exists
    # --- model ------------------------------------------------------------------------------------
    attention: bool = False  # add attention of `attention_kind`
    attention_kind: str = "spatial"  # "spatial": CBAM's spatial gate (the paper's); "cbam":
    # channel then spatial attention; "class": a class-specific attention head (CSRA), one map
    # per label (core/models/classifier.py)
    attention_stages: tuple[int, ...] = (-1,)  # feature stages gated, -1 = last (paper: -2, -1)
    attention_kernel: int = 7  # k of the gate's k x k convolution (CBAM uses 7)
    attention_normalise: bool = False  # gates multiply by map / mean(map): they move emphasis
    # between places instead of scaling everything (core/models/attention.py)
    attention_pool: str = "maxmean"  # what a gate sees: "maxmean" (CBAM: channel max and mean)
    # or "learned" (a 1x1 convolution to two maps; core/models/attention.py)
    attention_temperature: float = 1.0  # class kind: softmax temperature T (99 = max pooling)
    attention_lambda: float = 0.1  # class kind: weight of the attention-pooled logit term
    map_equivariance: float = 0.0  # class kind: weight of the training term that asks each
    # label's map to turn with the film, so evidence sits on the finding (core/training/equivariance.py)
    lung_prior: str = "none"  # what of each film the model sees: all of it ("none"), its lung
    # fields alone ("mask") or the box around them ("crop"), as the lung model finds them; recorded
    # in the checkpoint, so evaluation, predict, the study and the app apply it (core/data/lung_prior.py)
    lung_weight: float = 0.0  # weight of the training term on the share of the model's own maps
    # (class maps, gates, a linear head's class activation maps = its Grad-CAM) outside the films'
    # lung fields, "right for the right reasons"
    # (core/training/lung_term.py)
    lung_model: str | None = None  # lung model (lungs.pt) for the prior and the term; None: the
    # shipped one (assets/lungs)
    output_stride: int = 32  # 16 dilates the last stage: a 2x finer final map (8 x 8 at 128 px)
    head_stage: int = -1  # feature stage the head reads; earlier than -1 drops the later stages
    image_size: int = 224  # square model input in pixels (the paper's backbones use 224)
    drop_rate: float = 0.0  # dropout before the linear head
    pretrained: str | None = None  # local timm weights (.pth/.safetensors), "imagenet" (hub), or
    # a run folder or checkpoint of this project, whatever its labels (core/training/start.py)
    # --- optimisation -----------------------------------------------------------------------------
    epochs: int = 10  # passes over the training split (upper bound with early stopping)
    min_steps: int | None = None  # on a small collection each epoch goes over the films several
    # times, so that the epochs make at least this many optimiser steps; 0: one pass an epoch;
    # None: 400 on a collection people hold, 0 on a phantom (core/training/steps.py)
    batch_size: int = 32  # images per step per process (global batch = this x world size)
    accumulate: int = 1  # batches whose gradients add up before one optimiser step
    lr: float | None = None  # AdamW peak learning rate, reached at the end of warm-up; None:
    # LR_PRETRAINED when fine-tuning --pretrained weights (LR_FROM_PROJECT_MODEL from a project
    # model), LR_FROM_SCRATCH from random init
    gate_lr_scale: float = GATE_LR_SCALE  # the spatial gates learn at lr x this (see below)
    head_prior: bool = True  # start the head's biases at the training log-odds of each label, so
    # features carry findings rather than normality (core.training.model.start_head_at_prior)
    weight_decay: float = 1e-2  # AdamW decoupled weight decay (not on biases and norm weights)
    warmup_epochs: float = 1.0  # linear warm-up from 0 to `lr`, then cosine decay per step
    min_lr_ratio: float = 0.01  # the cosine ends at lr x this, not at 0
    clip_grad: float | None = 1.0  # clip the global gradient norm to this (None = no clipping)
    pos_weight: bool = False  # weight positives by negatives/positives of each training label
    patience: int | None = 5  # stop after this many epochs without a better val macro AUC
    # --- augmentation (on the device, training only) ----------------------------------------------
    augment: bool = True  # mild random-resized crop, small rotation, brightness/contrast
    hflip: bool = False  # horizontal flip: off because it moves the heart to the wrong side
    max_shift: float = 0.0  # move the chest by up to this share of the film (0.25: a quarter)
    # --- execution --------------------------------------------------------------------------------
    seed: int = 0  # seeds model init, data order, augmentation and the validation split
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), or "cuda", "cuda:1", "mps", "cpu"
    amp: str = "auto"  # precision: "auto" (CUDA: bf16 where supported, else fp16 with loss
    # scaling, both channels-last; elsewhere float32), "bf16" (bfloat16 autocast and channels-last,
    # also on the CPU), "fp16" (CUDA only) or "off" (float32); core/training/device.py
    workers: int | None = None  # loader processes per training process: None = the cores of
    # this process less one (at most 8), 0 = load in the training process itself
    threads: int | None = None  # CPU threads for torch ops (None = torch's default, one per core);
    # 1 is much faster when other jobs share the cores
    max_train_batches: int | None = None  # cap batches per epoch, for quick runs and smoke tests
    resume: bool = False  # continue from out/last.pt (model, optimiser, schedule, RNG, counters)
    stop_after: int | None = None  # end this invocation after this many epochs in total, leaving
    # last.pt for a later --resume (for time-limited job slots)
    progress: bool = True  # tqdm bars for epochs and batches on stderr (rank 0 only)
    tensorboard: bool = True  # TensorBoard event files in out/tensorboard, when it is installed

    def __post_init__(self) -> None:
        for name in ("views", "attention_stages"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        # Runs and presets from before the modes say true/false.
        object.__setattr__(self, "amp", amp_mode(self.amp))
        if self.lr is None:
            # Resolved here, so config.json records the rate actually used.
            object.__setattr__(self, "lr", self.default_lr)
        self.validate()

    @property
    def default_lr(self) -> float:
        """The learning rate used when none is given: from scratch, fine-tuning a project model
        (core/training/start.py) or fine-tuning other weights."""
        from cxr_attention.core.training.start import starts_from_project_model

        if self.pretrained is None:
            return LR_FROM_SCRATCH
        return (
            LR_FROM_PROJECT_MODEL if starts_from_project_model(self.pretrained) else LR_PRETRAINED
        )

    def validate(self) -> None:
        """Refuse values that cannot work, with the option name in the message."""
        check_label_spec(self.labels)
        if self.uncertain not in UNCERTAIN_POLICIES:
            raise ConfigError(
                f"uncertain {self.uncertain!r}: choose one of {', '.join(UNCERTAIN_POLICIES)}"
            )
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must lie in [0, 1), got {self.test_fraction}")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "accumulate": self.accumulate,
            "image_size": self.image_size,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.image_size < 32:
            raise ConfigError(f"image_size {self.image_size} is too small: use at least 32 px")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.attention_pool not in ("maxmean", "learned"):
            raise ConfigError(
                f"attention_pool {self.attention_pool!r}: choose maxmean (CBAM) or learned"
            )
        if self.attention_kind not in ATTENTION_KINDS:
            raise ConfigError(
                f"attention_kind {self.attention_kind!r}: choose one of {', '.join(ATTENTION_KINDS)}"
            )
        if self.output_stride not in OUTPUT_STRIDES:
            raise ConfigError(
                f"output_stride {self.output_stride}: choose one of "
                f"{', '.join(map(str, OUTPUT_STRIDES))}"
            )
        if not self.attention_temperature > 0 or self.attention_lambda < 0:
            raise ConfigError("attention_temperature must be positive, attention_lambda >= 0")
        if self.map_equivariance < 0:
            raise ConfigError(f"map_equivariance must not be negative, got {self.map_equivariance}")
        if self.map_equivariance > 0 and not (self.attention and self.attention_kind == "class"):
            raise ConfigError(
                "map_equivariance shapes a class-specific head's maps: add --attention "
                "--attention-kind class, or leave it at 0"
            )
        if self.lung_prior not in LUNG_PRIORS:
            raise ConfigError(
                f"lung_prior {self.lung_prior!r}: choose one of {', '.join(LUNG_PRIORS)}"
            )
        if self.lung_weight < 0:
            raise ConfigError(f"lung_weight must not be negative, got {self.lung_weight}")
        if not 0.0 <= self.max_shift <= 0.5:
            raise ConfigError(f"max_shift must lie in [0, 0.5] of the film, got {self.max_shift}")
        if not self.gate_lr_scale > 0:
            raise ConfigError(f"gate_lr_scale must be positive, got {self.gate_lr_scale}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or (self.workers or 0) < 0:
            raise ConfigError("weight_decay, warmup_epochs and workers must not be negative")
        if self.min_steps is not None and (
            not isinstance(self.min_steps, int) or self.min_steps < 0
        ):
            raise ConfigError(
                f"min_steps must be a whole number, 0 or more, got {self.min_steps!r}"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(
                f"val_fraction must lie strictly between 0 and 1, got {self.val_fraction}"
            )
        optional_positive = {
            "clip_grad": self.clip_grad,
            "patience": self.patience,
            "max_train_batches": self.max_train_batches,
            "stop_after": self.stop_after,
            "threads": self.threads,
        }
        for name, value in optional_positive.items():
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be positive (or left out), got {value!r}")
        if not self.views:
            raise ConfigError("views is empty: keep at least one of PA, AP")

    @property
    def uses_lungs(self) -> bool:
        """Whether the run needs the films' lung fields (a prior or the lung term)."""
        return self.lung_prior != "none" or self.lung_weight > 0

    def read_options(self) -> ReadOptions:
        """How this run reads its dataset (`core.data.sources.open_dataset`)."""
        return ReadOptions(
            labels=self.labels,
            views=self.views,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed,
            uncertain=self.uncertain,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        """Build from a preset, config.json or CLI dict; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown fit option(s) {', '.join(unknown)}: use FitConfig field names "
                f"such as {', '.join(sorted(known)[:6])}, ..."
            )
        from cxr_attention.core.training.start import check_start_exists, with_start_defaults

        # A project model as the start decides the model options left out (its backbone, ...).
        data = with_start_defaults(data, frozenset(known))
        missing = [name for name in ("data", "out", "backbone") if data.get(name) in (None, "")]
        if "backbone" in missing and data.get("pretrained") is not None:
            # A mistyped run folder is the problem to name, not the backbone it would have given.
            check_start_exists(data["pretrained"])
        if missing:
            raise ConfigError(f"missing {' and '.join('--' + m for m in missing)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"invalid fit options: {exc}") from None

    def differences(self, other: FitConfig, ignore: frozenset[str] = RUNTIME_FIELDS) -> list[str]:
        """'name: mine vs theirs' for every field that differs, except those in `ignore`."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"{name}: {theirs[name]!r} -> {mine[name]!r}"
            for name in mine
            if name not in ignore and mine[name] != theirs[name]
        ]


# Every fit option's name: what a --pretrained project model's config is read against
# (core/training/start.py: the fields fit has an option for, and the input contract it has not).
FIT_OPTIONS = frozenset(f.name for f in fields(FitConfig))
