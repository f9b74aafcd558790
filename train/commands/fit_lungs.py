"""`cxr-attention fit-lungs --data DIR --out DIR`: train the lung-field segmenter (`core.lungs`).

DIR holds `films/` and `masks/` of the same names (../shared/realdata-lungs). The shipped model in
assets/lungs was made by `cxr-attention fit-lungs --data ../shared/realdata-lungs --out
assets/lungs --phantom 100 --familiar ../shared/realdata-pneumonia`; `--test-group MCUCXR` (or CHNCXR) holds one centre out instead, to say how the
segmenter does on a centre it never saw.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from cxr_attention.core.lungs.fit import LungFitConfig
from cxr_attention.core.lungs.model import LungModelConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit-lungs",
        help="train the lung-field segmenter on films with manual lung masks",
        description="Train the lung-field segmenter (a small U-Net) on DIR/films and DIR/masks, "
        "measure it on films it did not learn and write OUT/lungs.pt, OUT/LUNGS.json (its card) "
        "and OUT/history.csv.",
    )
    defaults = LungFitConfig()
    p.add_argument("--data", required=True, metavar="DIR", help="folder with films/ and masks/")
    p.add_argument("--out", required=True, metavar="DIR", help="where the lung model goes")
    p.add_argument(
        "--test-group",
        metavar="NAME",
        help="hold this centre (name prefix before the first '_', e.g. MCUCXR) out as the test set",
    )
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument(
        "--image-size", type=int, default=defaults.model.image_size, help="view side in pixels"
    )
    p.add_argument(
        "--opacity",
        type=float,
        default=defaults.opacity,
        help="share of training films painted with opacities each epoch (default %(default)s)",
    )
    p.add_argument(
        "--phantom",
        type=int,
        default=0,
        metavar="N",
        help="also learn N films of the project's phantom with their lung fields (default 0)",
    )
    p.add_argument(
        "--familiar",
        nargs="+",
        default=[],
        metavar="DIR",
        help="folders of films without masks that the model should also know as chest films "
        "(its description of familiar films; e.g. a paediatric collection)",
    )
    p.add_argument(
        "--describe-only",
        action="store_true",
        help="keep the trained model in --out; fit its description of familiar films again",
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--max-batches", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cxr_attention.core.lungs.card import make_lung_model
    from cxr_attention.train.commands.sweep import set_threads

    set_threads(args.threads)
    config = LungFitConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        opacity=args.opacity,
        seed=args.seed,
        max_batches=args.max_batches,
        model=LungModelConfig(image_size=args.image_size),
    )

    def show(row: dict[str, float]) -> None:
        print(
            f"epoch {row['epoch']:>3}: loss {row['loss']:.4f}  validation Dice "
            f"{row['val_dice']:.4f}  ({row['seconds']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    command = "cxr-attention " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
    card = make_lung_model(
        args.data, args.out, config, args.test_group, command, show, phantom=args.phantom,
        familiar=args.familiar, describe_only=args.describe_only,
    )  # fmt: skip
    test = card["test"]["clear"]
    groups = ", ".join(
        f"{g} {v['mean_dice']:.3f} (n {v['n']})" for g, v in test["per_group"].items()
    )
    print(
        f"lung model in {args.out}: test Dice {test['mean_dice']:.3f} ({groups}); with painted "
        f"opacities {card['test']['opacified']['mean_dice']:.3f}; {card['size_mb']} MB"
    )
    return 0
