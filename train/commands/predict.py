"""`cxr-attention predict CKPT IMAGE_OR_FOLDER...`: score radiographs from the command line.

Output (stdout): a table with each image's top findings, `*` marking probabilities at or over the
checkpoint's per-label validation threshold (Youden's J by default; `--threshold f1` or a number).
`--json` prints a JSON list instead, one object per readable image::

    {"image": "scans/a.png",
     "probabilities": {"Atelectasis": 0.1234, ...},   # the first model (CKPT), all its labels
     "attention_kind": "class",                        # spatial, cbam, class; null for a baseline
     "calibrated": true,                               # probabilities temperature-scaled on validation
     "positive": ["Effusion", ...],                    # labels at/over threshold, most probable first
     "out_of_distribution": {"score": 12.3, "threshold": 2.9, "flagged": true},
                                                       # null for checkpoints without an OOD description
     "models": {"runA": {"checkpoint": "...", "probabilities": {...}, "attention_kind": ...,
                         "calibrated": ..., "positive": [...], "out_of_distribution": {...}},
                "runB": {...}}}                        # only when --ckpt adds models

Probabilities are calibrated (per-label temperature scaling fitted on the validation split at the
end of `fit`) when the checkpoint carries temperatures; older checkpoints give the raw sigmoid and a
note on stderr says so. An image flagged out of distribution is unlike the films the model was
trained on (its pooled features lie beyond what 97.5% of validation films reach): its output is
unreliable; the table marks it `[UNLIKE TRAINING FILMS]`.

`--csv OUT` writes one row per image: `image`, one column per label, `positive` (labels joined by
";"), `ood_score` and `out_of_distribution` (1 flagged, 0 not, empty without an OOD description);
with several models the columns are `<model>:<label>`, `<model>:positive`, ... A model is named
after its run folder (`RUN/checkpoint.pt`) or its file stem.

`--save-maps DIR` writes `<stem>_input.png` (the model view, exactly what the model sees before
normalisation; `<stem>_input_<S>px.png` per size when models differ in input size) and overlays
(`<stem>_<model>_...` with several models):

- per label, `<stem>_<method>_<Label>.png`, for Grad-CAM and for the attention of a class-specific
  head (one map per label), for the `--labels` asked for, else for each image's positive findings
  (its top finding if none): the findings a reader would look for;
- per gate, `<stem>_attention_<gate>.png` (`stage4`, ...), for the attention of a spatial or cbam
  gate, whatever the labels: one gate's map serves every label, so a label in its name would claim
  what the map does not know.

Files sharing a stem get `-2`, `-3`, ... in input order. Overlays use a fixed 0-1 colour scale:
attention maps are the model's own values (a gate's sigmoid, a class head's per-place
probability), Grad-CAM maps are divided by their maximum.

`--labels` and `--method` take comma lists or repeat (`--labels Effusion,Mass`), never swallowing
the image arguments. Probabilities in JSON and CSV are rounded to 6 decimals.

Unreadable files are reported on stderr, one line each, and skipped; the exit status is 1 if any
was skipped, 2 for a bad checkpoint or option.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cxr_attention.core.errors import ConfigError, RadiographError
from cxr_attention.core.labels import canonical_label
from cxr_attention.train.commands.predict_output import Output, save_maps

if TYPE_CHECKING:
    from cxr_attention.core.inference import ScoringModel
    from cxr_attention.core.progress import ProgressBar

METHODS = ("attention", "gradcam")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="score radiographs (PNG, JPEG, DICOM; files or folders) with a checkpoint",
        description="Score radiographs with one or more checkpoints. Not a medical device.",
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint.pt (or its run folder)")
    parser.add_argument(
        "images",
        metavar="IMAGE_OR_FOLDER",
        nargs="+",
        help="files or folders (searched recursively)",
    )
    parser.add_argument(
        "--ckpt", action="append", default=[], metavar="CKPT", help="another model (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--csv", metavar="OUT", help="also write one CSV row per image to OUT")
    parser.add_argument(
        "--save-maps",
        metavar="DIR",
        help="write each image's model view and map overlays: Grad-CAM and class-specific "
        "attention one per label (--labels, else the image's positive findings), a gate's "
        "attention one per gate (<stem>_attention_stage4.png: the same map for every label)",
    )
    # Comma lists (or the flag repeated), not nargs="+", so a flag never swallows the image paths.
    parser.add_argument(
        "--method",
        action="append",
        metavar="attention,gradcam",
        help="map methods for --save-maps (default: attention for attention models, else gradcam)",
    )
    parser.add_argument(
        "--labels",
        action="append",
        metavar="LABEL,...",
        help="labels to map and to show in the table ('all' for every label); default: findings",
    )
    parser.add_argument(
        "--threshold",
        default="youden",
        help="operating point marking positives: youden (default), f1, or a probability",
    )
    parser.add_argument("--top", type=int, default=3, help="findings shown per image (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding threads (default: 1 on CPU, 4 on GPU; 0 decodes inline)",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument(
        "--any-modality", action="store_true", help="also score DICOMs that are not CR/DX/RG"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that `cxr-attention --help` does not pay for torch and timm.
    from cxr_attention.core.data.radiograph import iter_radiograph_files
    from cxr_attention.core.inference import (
        ImageFailure,
        has_validation_thresholds,
        load_scoring_models,
        predict_files,
        resolve_device,
        thresholds_for,
    )

    args.method = _comma_list(args.method)
    args.labels = _comma_list(args.labels)
    unknown = [m for m in args.method or () if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown --method {unknown[0]!r}: choose from {', '.join(METHODS)}")
    if args.method and not args.save_maps:
        raise ConfigError("--method only applies with --save-maps DIR")
    if args.batch_size < 1 or (args.workers is not None and args.workers < 0):
        raise ConfigError("--batch-size must be at least 1 and --workers 0 or more")
    paths = list(iter_radiograph_files(args.images))
    if not paths:
        raise RadiographError(f"no PNG, JPEG or DICOM files found in {', '.join(args.images)}")
    device = resolve_device(args.device)
    models = load_scoring_models([args.checkpoint, *args.ckpt], device)
    thresholds = {m.tag: thresholds_for(m.checkpoint, args.threshold) for m in models}
    for m in models:
        if args.threshold in ("youden", "f1") and not has_validation_thresholds(m.checkpoint):
            print(
                f"cxr-attention predict: note: {m.tag} has no validation thresholds; "
                "0.5 marks positives",
                file=sys.stderr,
            )
        missing = _missing_trust(m)
        if missing:
            print(f"cxr-attention predict: note: {m.tag} has {missing}", file=sys.stderr)
    asked = _asked_labels(args.labels, models)
    methods = _methods(args.method, models) if args.save_maps else {}
    maps_dir = Path(args.save_maps) if args.save_maps else None
    if maps_dir is not None:
        try:
            maps_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create --save-maps {maps_dir}: {exc.strerror or exc}"
            ) from None
    stems = _unique_stems(paths)

    width = min(48, max(len(str(p)) for p in paths))
    show_progress = any(Path(p).is_dir() for p in args.images)
    failures = 0
    with contextlib.ExitStack() as stack:
        csv_file = stack.enter_context(_open_csv(args.csv)) if args.csv else None
        out = Output(args, models, thresholds, asked, width, csv_file)
        progress = stack.enter_context(_progress(len(paths), show_progress))
        for result in predict_files(
            models,
            paths,
            batch_size=args.batch_size,
            device=device,
            workers=args.workers,
            allow_any_modality=args.any_modality,
        ):
            if isinstance(result, ImageFailure):
                failures += 1
                progress.write(f"cxr-attention predict: skipped {result.reason}", file=sys.stderr)
                progress.update(1)
                continue
            out.add(result)
            if maps_dir is not None:
                save_maps(maps_dir, result, models, methods, asked, thresholds, stems, device)
            progress.update(len(result.images))
        out.close()
    if failures and len(paths) > 1:
        print(
            f"cxr-attention predict: {failures} of {len(paths)} files could not be read "
            "(reasons above)",
            file=sys.stderr,
        )
    return 1 if failures else 0


def _missing_trust(m: ScoringModel) -> str:
    """What a checkpoint saved before calibration and OOD descriptions existed lacks, in words
    ("" when it has both)."""
    missing = []
    if not m.checkpoint.calibrated:
        missing.append("no calibration (probabilities are raw sigmoid outputs)")
    if m.checkpoint.ood is None:
        missing.append("no description of its training films (unusual images are not flagged)")
    return " and ".join(missing)


def _comma_list(values: list[str] | None) -> list[str] | None:
    """Flag values given repeated and/or comma-separated, flattened; None when not given."""
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _asked_labels(names: list[str] | None, models: list[ScoringModel]) -> tuple[str, ...]:
    """The --labels as canonical names present in every model ('all': the first model's labels)."""
    if not names:
        return ()
    if [n.lower() for n in names] == ["all"]:
        labels = models[0].labels
    else:
        labels = tuple(dict.fromkeys(canonical_label(n) for n in names))
    for m in models:
        missing = [label for label in labels if label not in m.labels]
        if missing:
            raise ConfigError(
                f"label {missing[0]!r} is not predicted by {m.tag}: it has {', '.join(m.labels)}"
            )
    return labels


def _methods(asked: list[str] | None, models: list[ScoringModel]) -> dict[str, list[str]]:
    """Map methods per model; attention asked of a baseline is refused (one model) or skipped."""
    out = {}
    for m in models:
        has_attention = m.checkpoint.model.has_attention
        methods = list(dict.fromkeys(asked or ["attention" if has_attention else "gradcam"]))
        if "attention" in methods and not has_attention:
            if len(models) == 1:
                raise ConfigError(f"{m.tag} is a baseline without attention: use --method gradcam")
            print(
                f"cxr-attention predict: note: {m.tag} has no attention; its attention maps "
                "are skipped",
                file=sys.stderr,
            )
            methods.remove("attention")
        out[m.tag] = methods
    return out


def _unique_stems(paths: list[Path]) -> dict[str, str]:
    stems: dict[str, str] = {}
    used: set[str] = set()
    for path in paths:
        stem, n = path.stem, 2
        while stem in used:
            stem, n = f"{path.stem}-{n}", n + 1
        used.add(stem)
        stems[str(path)] = stem
    return stems


def _open_csv(path: str) -> TextIO:
    try:
        return Path(path).open("w", newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write --csv {path}: {exc.strerror or exc}") from None


def _progress(total: int, show: bool) -> ProgressBar:
    from cxr_attention.core.progress import progress_bar

    # Off a terminal nothing: each image's result is already a line, and stderr keeps to failures.
    return progress_bar(total=total, unit="image", enabled=show, off_terminal="silent")
