"""`cxr-attention phantom OUT --n N --size PX --seed S`: write a synthetic ChestX-ray14-style set."""

from __future__ import annotations

import argparse

from cxr_attention.core.data.phantom import generate_phantom
from cxr_attention.core.progress import ProgressBar, progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "phantom",
        help="write a synthetic chest-radiograph set in ChestX-ray14 layout (with lesion masks)",
        description=(
            "Draw synthetic frontal chest radiographs with the 14 ChestX-ray14 findings and write "
            "them in the ChestX-ray14 layout (images/, Data_Entry_2017_v2020.csv, "
            "BBox_List_2017.csv, train_val_list.txt, test_list.txt) plus masks/ and PHANTOM.json. "
            "Synthetic, not patient data. The same --n/--size/--seed give identical files."
        ),
    )
    parser.add_argument("out", metavar="OUT", help="folder to create (must be empty or new)")
    parser.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--difficulty",
        choices=("teaching", "research"),
        default="teaching",
        help="teaching (default): findings plain enough to learn on a CPU in minutes; research: "
        "as subtle as on real films, with ChestX-ray14's rare findings",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="processes to draw with (default: all cores)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a phantom set already in OUT"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bar: ProgressBar | None = None

    def advance(done: int) -> None:
        nonlocal bar
        if bar is None:  # opened on the first finished chunk, so a bad argument prints no bar
            bar = progress_bar(total=args.n, unit="img", desc="phantom", enabled=not args.quiet)
        bar.update(done)

    try:
        summary = generate_phantom(
            args.out,
            args.n,
            args.size,
            args.seed,
            workers=args.workers,
            overwrite=args.overwrite,
            progress=advance,
            difficulty=args.difficulty,
        )
    finally:
        if bar is not None:
            bar.close()
    print(
        f"wrote {summary.n_images} synthetic images ({summary.n_patients} patients, "
        f"{summary.size} px, seed {summary.seed}, {args.difficulty}) to {summary.root} in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.0f} images/s)"
    )
    return 0
