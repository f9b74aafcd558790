"""`cxr-attention cache DATA --size PX`: decode every image of a dataset once into a uint8 cache."""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from cxr_attention.core.data.cache import build_cache, check_cache, index_cache_folder
from cxr_attention.core.data.sources import open_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="preprocess every image of a dataset into a fast uint8 cache",
        description="Decode every image once, at the model's image size, into "
        "DATA/.cxr-cache/<size>/ (used automatically by `fit` while it matches the files).",
    )
    parser.add_argument(
        "data",
        metavar="DATA",
        help="dataset: ChestX-ray14 folder or phantom, class folders, or a CSV of paths and labels",
    )
    parser.add_argument("--size", type=int, required=True, metavar="PX", help="image size, pixels")
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N", help="processes (default: all cores)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = open_dataset(args.data)
        existing, reason = check_cache(index, args.size)
        if existing is not None and not args.force:
            _report(caught)
            print(
                f"cache up to date: {len(existing):,} images at {args.size} px in {existing.folder}"
            )
            return 0
        if reason:
            print(f"rebuilding the cache: {reason}")
        start = time.perf_counter()
        cache = build_cache(
            index, args.size, workers=args.workers, force=True, progress=not args.no_progress
        )
        seconds = time.perf_counter() - start
    _report(caught)
    n_ok = len(cache) - len(cache.unreadable)
    gigabytes = len(cache) * args.size**2 / 1e9
    print(
        f"cached {n_ok:,} images at {args.size} px in {seconds:.1f} s "
        f"({len(cache) / max(seconds, 1e-9):,.0f} images/s) -> {index_cache_folder(index, args.size)} "
        f"({gigabytes:.2f} GB)"
    )
    return 0


def _report(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        print(f"cxr-attention cache: warning: {warning.message}", file=sys.stderr)
