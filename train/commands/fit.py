"""`cxr-attention fit`: train one variant into a run folder (works under torchrun).

Options resolve in three layers, later ones winning: the saved run (with --resume), a preset
(`--preset NAME`, a YAML file of FitConfig fields in train/presets/ or a path), then flags given on
the command line. Only flags actually given override; nothing is silently defaulted on top of a
preset.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from cxr_attention.core.errors import ConfigError

# Literals, not imported from core.data.table (which loads pandas): `--help` stays fast.
UNCERTAIN_POLICIES = ("zeros", "ones")
AMP_MODES = ("auto", "bf16", "fp16", "off")  # core.training.device.AMP_MODES

PRESETS = Path(__file__).resolve().parents[1] / "presets"

# Flags whose value 0 means "off", stored as None in FitConfig.
_ZERO_MEANS_OFF = ("clip_grad", "patience")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit",
        help="train one variant (a backbone with or without spatial attention)",
        description=(
            "Train one variant into a run folder: checkpoint.pt (best by validation macro AUC), "
            "last.pt (for --resume), config.json and history.csv. Run it under "
            "`torchrun --nproc_per_node N` for data-parallel training."
        ),
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="YAML of FitConfig fields: a name in train/presets/ or a path",
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--data", metavar="DIR", help="dataset folder in ChestX-ray14 layout (real or phantom)"
    )
    data.add_argument(
        "--labels",
        help="auto (default: the labels the data names), all14, paper13 (ChestX-ray14 without "
        "Hernia), or label names, comma-separated",
    )
    data.add_argument(
        "--test-fraction",
        type=float,
        help="share of patients held out for test when the data gives no test split (0.2)",
    )
    data.add_argument(
        "--uncertain",
        choices=UNCERTAIN_POLICIES,
        help="a table's -1 (uncertain) labels: zeros (U-Zeros, default) or ones (U-Ones)",
    )
    data.add_argument("--views", nargs="+", choices=("PA", "AP"), help="view positions to keep")
    data.add_argument(
        "--val-fraction", metavar="F", type=float, help="share of train_val patients for validation"
    )
    data.add_argument(
        "--no-cache", dest="use_cache", action="store_false", help="decode files, ignore a cache"
    )
    model = p.add_argument_group("model")
    model.add_argument(
        "--backbone",
        metavar="NAME",
        help="timm name: resnet101, efficientnet_b0, efficientnet_b3, mobilenetv2_100, ... "
        "(with --pretrained RUN: the start's, unless given)",
    )
    model.add_argument(
        "--attention",
        action=argparse.BooleanOptionalAction,
        help="add attention (of --attention-kind)",
    )
    model.add_argument(
        "--attention-kind",
        choices=("spatial", "cbam", "class"),
        help="spatial: CBAM's spatial gate (the paper's); cbam: channel then spatial; class: a "
        "class-specific attention head (CSRA), one map per label; implies --attention",
    )
    model.add_argument(
        "--attention-temperature",
        metavar="T",
        type=float,
        help="class kind: softmax temperature over places (99 = max pooling)",
    )
    model.add_argument(
        "--attention-lambda",
        metavar="L",
        type=float,
        help="class kind: weight of the attention-pooled term beside average pooling",
    )
    model.add_argument(
        "--map-equivariance",
        metavar="W",
        type=float,
        help="class kind: weight of a training term that asks each label's map to turn with the "
        "film (half a turn), so its evidence sits on the finding, not beside it (0 = off)",
    )
    model.add_argument(
        "--lung-prior",
        choices=("none", "mask", "crop"),
        help="what of each film the model sees: all of it (none, the default), its lung fields "
        "alone (mask) or the box around them (crop), as the lung model finds them; recorded in "
        "the checkpoint, so evaluate, predict, study and the app apply it",
    )
    model.add_argument(
        "--lung-weight",
        metavar="W",
        type=float,
        help="weight of a training term on the share of the model's own maps (class maps, gates; "
        "a baseline's Grad-CAM) outside the films' lung fields (0 = off)",
    )
    model.add_argument(
        "--lung-model",
        metavar="PATH",
        help="lung model (lungs.pt) for --lung-prior and --lung-weight (default: the shipped one)",
    )
    model.add_argument(
        "--output-stride",
        metavar="S",
        type=int,
        choices=(8, 16, 32),
        help="input pixels per final feature pixel; 16 dilates the last stage for a 2x finer map",
    )
    model.add_argument(
        "--head-stage",
        metavar="I",
        type=int,
        help="feature stage the head reads, -1 = last; -2 ends the network one stage early "
        "(a 2x finer map, fewer layers)",
    )
    model.add_argument(
        "--attention-stages",
        metavar="I",
        nargs="+",
        type=int,
        help="feature stages to gate, -1 = last (paper preset: -2 -1)",
    )
    model.add_argument(
        "--attention-normalise",
        action=argparse.BooleanOptionalAction,
        help="gates multiply by map / mean(map): they move emphasis, never rescale everything",
    )
    model.add_argument(
        "--attention-pool",
        choices=("maxmean", "learned"),
        help="what a gate sees: channel max and mean (CBAM) or a learned 1x1 projection",
    )
    model.add_argument("--image-size", metavar="PX", type=int, help="square input size in pixels")
    model.add_argument("--drop-rate", metavar="P", type=float, help="dropout before the head")
    model.add_argument(
        "--pretrained",
        metavar="RUN|PATH|imagenet",
        type=_pretrained,
        help="start from: a run folder or checkpoint of cxr-attention, whatever labels it "
        "learnt (the shipped zoos' too): it gives its backbone, its gates where this model has "
        "them, its input (channels, normalisation) and the model options you leave out (the "
        "ones you give win); your labels get a fresh head; another backbone or gate layout is "
        "refused; config.json records the start and `inspect` shows it (default --lr 2e-3). "
        "Or a local timm file (.pth or .safetensors), or 'imagenet' for timm's default ImageNet "
        "weights from the Hugging Face hub (cached; a connection the first time; ./imagenet "
        "for a file of that name) (default --lr 1e-4). Default: random init",
    )
    opt = p.add_argument_group("optimisation")
    opt.add_argument(
        "--epochs",
        metavar="E",
        type=int,
        help="epochs: one validation each, and one pass over the training split (several on a "
        "small collection: --min-steps)",
    )
    opt.add_argument("--batch-size", metavar="B", type=int, help="images per step per process")
    opt.add_argument(
        "--min-steps",
        metavar="N",
        type=int,
        help="on a small collection each epoch goes over the training films several times, so "
        "that the run makes at least N optimiser steps; validation, patience and the schedule "
        "still count epochs (0: each epoch is one pass; default: 400 on a collection you hold: "
        "class folders, a CSV, ChestX-ray14; 0 on a phantom)",
    )
    opt.add_argument(
        "--accumulate",
        metavar="N",
        type=int,
        help="batches per optimiser step (gradient accumulation)",
    )
    opt.add_argument(
        "--lr",
        metavar="LR",
        type=float,
        help="AdamW peak learning rate (default: 2e-3 from random initialisation or from a "
        "cxr-attention model, 1e-4 when fine-tuning timm or ImageNet weights)",
    )
    opt.add_argument(
        "--gate-lr-scale",
        metavar="X",
        type=float,
        help="the attention gates learn at lr x this",
    )
    opt.add_argument(
        "--head-prior",
        action=argparse.BooleanOptionalAction,
        help="start the head's biases at each label's training log-odds",
    )
    opt.add_argument("--weight-decay", metavar="WD", type=float, help="AdamW weight decay")
    opt.add_argument(
        "--warmup-epochs", metavar="E", type=float, help="linear warm-up length, then cosine decay"
    )
    opt.add_argument(
        "--clip-grad", metavar="NORM", type=float, help="max global gradient norm (0 = no clipping)"
    )
    opt.add_argument(
        "--pos-weight",
        action=argparse.BooleanOptionalAction,
        help="weight positives by training prevalence",
    )
    opt.add_argument(
        "--patience", metavar="E", type=int, help="early-stopping patience in epochs (0 = off)"
    )
    opt.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="crop/rotation/contrast augmentation (default on)",
    )
    opt.add_argument(
        "--hflip",
        action=argparse.BooleanOptionalAction,
        help="also flip horizontally (off: it moves the heart)",
    )
    opt.add_argument(
        "--max-shift",
        metavar="F",
        type=float,
        help="also move the chest by up to this share of the film (0.25: a quarter; default 0)",
    )
    run = p.add_argument_group("run")
    run.add_argument("--out", metavar="RUN", help="run folder to write")
    run.add_argument(
        "--seed", metavar="S", type=int, help="seed of init, data order, augmentation and the split"
    )
    run.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.pt"
    )
    run.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda, cuda:N or mps")
    run.add_argument(
        "--amp",
        choices=AMP_MODES,
        help="precision: auto (bf16 or fp16 + channels-last on CUDA, float32 elsewhere), bf16 "
        "(bfloat16 autocast + channels-last, also on the CPU: the GPU's numerics where tests "
        "run), fp16 (CUDA only) or off (float32)",
    )
    run.add_argument(
        "--no-amp", dest="amp", action="store_const", const="off", help="the same as --amp off"
    )
    run.add_argument(
        "--workers",
        metavar="N",
        type=int,
        help="data-loading processes per training process (default: cores less one, at most 8)",
    )
    run.add_argument(
        "--threads", metavar="N", type=int, help="CPU threads for torch (default: one per core)"
    )
    run.add_argument(
        "--max-train-batches", metavar="N", type=int, help="cap batches per epoch (quick runs)"
    )
    run.add_argument(
        "--stop-after",
        metavar="E",
        type=int,
        help="end after this many epochs in all; --resume continues",
    )
    run.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars"
    )
    _show_defaults(p)
    p.set_defaults(func=run_fit)


def _pretrained(value: str) -> str:
    """--pretrained: 'imagenet' in any case is the keyword; anything else is a path."""
    return "imagenet" if value.strip().lower() == "imagenet" else value


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append FitConfig's default to each option's help (the one source of defaults)."""
    from dataclasses import MISSING, fields

    from cxr_attention.core.training.config import FitConfig

    defaults = {f.name: f.default for f in fields(FitConfig) if f.default is not MISSING}
    for action in parser._actions:
        default = defaults.get(action.dest, MISSING)
        if default in (MISSING, None) or not action.help or "default" in action.help:
            continue
        if action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction):
            continue  # --no-cache, --resume, ...: the flag's name says it
        if isinstance(default, tuple):
            default = " ".join(map(str, default))
        action.help += f" (default: {default})"


def load_preset(name: str) -> dict[str, Any]:
    """FitConfig fields from train/presets/<name>.yaml, or from a YAML file path."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESETS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PRESETS.glob("*.yaml")))
        raise ConfigError(f"preset {name!r} not found: use one of {known} or a path to a YAML file")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"preset {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"preset {path} must be a mapping of option: value")
    return content


def resolve_options(args: argparse.Namespace) -> dict[str, Any]:
    """Saved run (with --resume) < preset < flags given: the FitConfig fields of this call."""
    given = {k: v for k, v in vars(args).items() if k not in ("command", "debug", "func", "preset")}
    for name in _ZERO_MEANS_OFF:
        if given.get(name) == 0:
            given[name] = None
    if "attention_kind" in given and "attention" not in given:
        given["attention"] = True  # naming a kind asks for attention
    options: dict[str, Any] = {}
    out = given.get("out")
    if given.get("resume") and out and (Path(out) / "config.json").is_file():
        options |= _saved_fit_options(Path(out) / "config.json")
    if "preset" in args:
        options |= load_preset(args.preset)
    return options | given


def _saved_fit_options(path: Path) -> dict[str, Any]:
    try:
        saved = dict(json.loads(path.read_text())["fit"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} cannot be read: resume needs the run's config.json") from None
    # Where the earlier invocation was told to stop does not bind this one.
    saved.pop("stop_after", None)
    saved.setdefault("min_steps", 0)  # a run from before --min-steps made one pass an epoch
    return saved


def run_fit(args: argparse.Namespace) -> int:
    # Imported here so `cxr-attention --help` stays fast.
    from cxr_attention.core.training import FitConfig, fit
    from cxr_attention.core.training.progress import console_logging

    console_logging()
    config = FitConfig.from_dict(resolve_options(args))
    fit(config)
    return 0
