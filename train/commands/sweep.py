"""`cxr-attention sweep --data DATA --preset paper --out DIR`: the paper's grid, evaluated and compared.

Every variant (a backbone with and without spatial attention) is trained with the same preset and
seed into DIR/<backbone>[+attention], evaluated on the test split right after, and the report is
written to DIR/report. A restart skips variants that are done (checkpoint.pt and an up-to-date
metrics.json, trained with the same options) and resumes an interrupted one from its last.pt.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cxr_attention.core.errors import ConfigError
from cxr_attention.core.models.kinds import ATTENTION_KINDS, DEFAULT_KIND, variant_name

REPORT_DIR = "report"
PRETRAINED_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclass(frozen=True)
class Variant:
    """One cell of the grid: a backbone, with attention of one kind or without."""

    backbone: str
    attention: bool
    kind: str = DEFAULT_KIND  # which attention (core.models.kinds); ignored without attention

    @property
    def name(self) -> str:
        """The run folder's name, e.g. ``mobilenetv2_100+attention`` (as ModelConfig.variant)."""
        return variant_name(self.backbone, self.kind if self.attention else None)


def grid(backbones: Sequence[str], kinds: Sequence[str] = (DEFAULT_KIND,)) -> list[Variant]:
    """Each backbone without, then with attention of each kind."""
    return [
        variant
        for b in backbones
        for variant in (Variant(b, False), *(Variant(b, True, kind) for kind in kinds))
    ]


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(threads: int | None = None) -> int:
    """Intra-op threads for training and inference: all usable cores unless OMP_NUM_THREADS says.

    Returns the number set. Data loading for these commands reads a memory-mapped cache, which
    needs no worker processes competing for the same cores.
    """
    import torch

    if threads is None:
        threads = int(os.environ.get("OMP_NUM_THREADS") or usable_cores())
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


class Steps:
    """The overall plan as a numbered list on stderr, then one line as each step starts and ends.

    Per-step progress bars (training epochs and batches, evaluation) come from the steps themselves.
    """

    def __init__(self, titles: Sequence[str], stream: TextIO | None = None) -> None:
        self.titles = list(titles)
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def show_plan(self, heading: str) -> None:
        self._print(heading)
        for i, title in enumerate(self.titles, 1):
            self._print(f"  {i:>2}. {title}")

    @contextlib.contextmanager
    def step(self, index: int) -> Iterator[dict[str, str]]:
        """Announce step `index` (0-based); the body may set outcome["note"] (e.g. 'skipped')."""
        outcome: dict[str, str] = {}
        tag = f"[{index + 1}/{len(self.titles)}]"
        self._print(f"{tag} {self.titles[index]} ...")
        begun = time.perf_counter()
        yield outcome
        took = time.perf_counter() - begun
        note = outcome.get("note", "done")
        total = time.perf_counter() - self.started
        self._print(f"{tag} {note} in {took:.0f} s (total {total:.0f} s)")


def pretrained_file(folder: str | Path | None, backbone: str) -> str | None:
    """DIR/<backbone>.safetensors (or .pth/.pt/.bin) when a weights folder is given."""
    if folder is None:
        return None
    folder = Path(folder).expanduser()
    for suffix in PRETRAINED_SUFFIXES:
        candidate = folder / f"{backbone}{suffix}"
        if candidate.is_file():
            return str(candidate)
    raise ConfigError(
        f"no weights for {backbone} in {folder}: put {backbone}.safetensors (or .pth) there, "
        "or leave out --pretrained-dir"
    )


def variant_options(
    base: dict[str, Any], variant: Variant, out_dir: Path, weights: str | Path | None = None
) -> dict[str, Any]:
    """FitConfig fields of one variant: the shared options plus its backbone, attention and folder."""
    options = dict(base)
    options |= {
        "backbone": variant.backbone,
        "attention": variant.attention,
        "attention_kind": variant.kind,
        "out": str(out_dir / variant.name),
        "resume": True,  # fit starts, resumes or returns at once: a restart continues the grid
    }
    if weights is not None:
        options["pretrained"] = pretrained_file(weights, variant.backbone)
    return options


def is_done(config) -> bool:
    """The run in `config.out` finished training with these options and was evaluated after.

    Raises ConfigError when the folder holds a run trained with other options.
    """
    from cxr_attention.core.models.checkpoint import read_checkpoint_data
    from cxr_attention.core.runs import CHECKPOINT, CONFIG, METRICS, RunFolder
    from cxr_attention.core.training import FitConfig

    folder = RunFolder(Path(config.out))
    if not folder.has(CONFIG):
        return False
    saved = folder.config().get("fit")
    if isinstance(saved, dict):
        differences = config.differences(FitConfig.from_dict(saved))
        if differences:
            raise ConfigError(
                f"{folder.path} was trained with other options ({'; '.join(differences)}): "
                "choose another --out or remove that run folder"
            )
    if not (folder.has(CHECKPOINT) and folder.has(METRICS)):
        return False
    if (folder.path / METRICS).stat().st_mtime < folder.checkpoint.stat().st_mtime:
        return False  # retrained since it was evaluated
    # fit records why training ended; None means it was interrupted (evaluated part-way by hand)
    training = read_checkpoint_data(folder.checkpoint).get("training") or {}
    return "stopped" not in training or training["stopped"] is not None


def train_and_evaluate(
    options: dict[str, Any], n_resamples: int = 1000, progress: bool = True
) -> tuple[Path, bool]:
    """Train (or resume) one variant, then evaluate it on the test split.

    Returns (run folder, skipped), skipped meaning the run was already done.
    """
    from cxr_attention.core.evaluation import evaluate_run
    from cxr_attention.core.training import FitConfig, fit

    config = FitConfig.from_dict(options)
    run = Path(config.out)
    if is_done(config):
        return run, True
    fit(config)
    evaluate_run(  # --workers decodes the test films too (before: one process per core anyway)
        run, n_resamples=n_resamples, device=None if config.device == "auto" else config.device,
        num_workers=config.workers, progress=progress,
    )  # fmt: skip
    return run, False


def register(subparsers: argparse._SubParsersAction) -> None:
    from cxr_attention.core.models.registry import PAPER_BACKBONES

    p = subparsers.add_parser(
        "sweep",
        help="the paper's grid: each backbone with and without attention, evaluated and compared",
        description=(
            "Train every variant (backbone x attention on/off) with one preset into "
            "DIR/<backbone>[+attention], evaluate each on the test split, and write the comparison "
            "report to DIR/report. Restarting skips finished variants and resumes an interrupted one."
        ),
    )
    p.add_argument("--data", required=True, help="dataset folder in ChestX-ray14 layout")
    p.add_argument("--preset", default="paper", help="preset in train/presets/ or a YAML path")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the runs and report")
    p.add_argument(
        "--backbones",
        nargs="+",
        default=list(PAPER_BACKBONES),
        metavar="NAME",
        help=f"backbones (default: the paper's {' '.join(PAPER_BACKBONES)})",
    )
    p.add_argument(
        "--kinds",
        nargs="+",
        default=[DEFAULT_KIND],
        choices=ATTENTION_KINDS,
        metavar="KIND",
        help="attention kinds beside each baseline: spatial (the paper's, default), cbam, class",
    )
    p.add_argument(
        "--pretrained-dir",
        metavar="DIR",
        help="local weights as DIR/<backbone>.safetensors or .pth (default: random init)",
    )
    over = p.add_argument_group("overrides of the preset", argument_default=argparse.SUPPRESS)
    over.add_argument("--epochs", type=int)
    over.add_argument("--batch-size", type=int)
    over.add_argument("--image-size", type=int)
    over.add_argument("--output-stride", type=int, choices=(8, 16, 32))
    over.add_argument("--labels", choices=("all14", "paper13"))
    over.add_argument("--lr", type=float)
    over.add_argument("--patience", type=int)
    over.add_argument("--seed", type=int)
    over.add_argument("--device")
    over.add_argument("--workers", type=int)
    over.add_argument("--max-train-batches", type=int, help="cap batches per epoch (quick runs)")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--threads", type=int, help="torch threads (default: all usable cores)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


OVERRIDES = (
    "epochs",
    "batch_size",
    "image_size",
    "output_stride",
    "labels",
    "lr",
    "patience",
    "seed",
    "device",
    "workers",
    "max_train_batches",
)


def run(args: argparse.Namespace) -> int:
    from cxr_attention.core.report import compare_runs
    from cxr_attention.core.training.progress import console_logging
    from cxr_attention.train.commands.fit import load_preset

    console_logging()  # one line per epoch from each variant's training

    data = Path(args.data).expanduser()
    if not data.is_dir():
        raise ConfigError(
            f"--data {data} is not a folder: pass the ChestX-ray14 (or phantom) folder"
        )
    if args.n_resamples < 0:
        raise ConfigError("--n-resamples must be 0 or more")
    out = Path(args.out).expanduser()
    base = load_preset(args.preset)
    base |= {k: getattr(args, k) for k in OVERRIDES if hasattr(args, k)}
    if base.get("patience") == 0:
        base["patience"] = None
    base |= {"data": str(data), "progress": args.progress}
    variants = grid(list(dict.fromkeys(args.backbones)), list(dict.fromkeys(args.kinds)))
    plans = [variant_options(base, v, out, args.pretrained_dir) for v in variants]
    threads = set_threads(args.threads)

    steps = Steps([f"train and evaluate {v.name}" for v in variants] + ["compare -> report"])
    steps.show_plan(f"cxr-attention sweep: {len(variants)} variants into {out} ({threads} threads)")
    runs = []
    for i, options in enumerate(plans):
        with steps.step(i) as outcome:
            run_dir, skipped = train_and_evaluate(options, args.n_resamples, args.progress)
            if skipped:
                outcome["note"] = "already done, skipped"
            runs.append(run_dir)
    with steps.step(len(plans)):
        paths = compare_runs(runs, out / REPORT_DIR, n_resamples=args.n_resamples)
    print(f"report: {paths.markdown} and {paths.html}")
    return 0
