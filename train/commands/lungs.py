"""`cxr-attention lungs FILM_OR_FOLDER... --out DIR`: outline the lung fields of films.

Writes DIR/<stem>.png, 0/255 at each film's own size (`core.lungs.files.write_lung_masks`). A film
with no plausible lung fields (a hand, a CT slice, a blank image) is refused in one line and not
written; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lungs",
        help="outline the lung fields of films (PNG masks at each film's own size)",
        description="Outline both lung fields of frontal chest films with the shipped lung model "
        "(assets/lungs; a tool for judging attention maps, not a diagnostic output). Writes "
        "OUT/<stem>.png, 0 outside and 255 inside, at each film's own size.",
    )
    p.add_argument("films", nargs="+", metavar="FILM_OR_FOLDER", help="PNG, JPEG or DICOM files")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the masks")
    p.add_argument(
        "--lung-model", metavar="PATH", help="a lung model (lungs.pt) instead of the shipped one"
    )
    p.add_argument(
        "--any-modality",
        action="store_true",
        help="read DICOM files of any modality (CT, MR, ...) instead of refusing them",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxr_attention.core.lungs.files import write_lung_masks
    from cxr_attention.core.lungs.shipped import lung_model_at

    model = lung_model_at(args.lung_model)
    written = refused = 0
    for result in write_lung_masks(args.films, args.out, model, args.any_modality):
        if result.written is None:
            refused += 1
            print(f"cxr-attention lungs: skipped {result.reason}", file=sys.stderr)
            continue
        written += 1
        for warning in result.warnings:
            print(f"cxr-attention lungs: warning: {result.source}: {warning}", file=sys.stderr)
        print(f"{result.source} -> {result.written} (lung fields {result.share:.0%} of the film)")
    if refused and written + refused > 1:
        print(
            f"cxr-attention lungs: {written} written, {refused} skipped (reasons above)",
            file=sys.stderr,
        )
    return 1 if refused else 0
