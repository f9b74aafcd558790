"""`cxr-attention data DATA`: what a researcher must know about a dataset before training on it.

Reads DATA as `fit` would (`core.data.sources`), decodes every film once (`core.data.audit`) and
prints the source, labels, splits (films, patients and positives per split) and every finding:
byte-identical files, films or patients in two splits or classes, EXIF orientation, RGB files of
a grey film, debris skipped, unreadable films. `--json` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from cxr_attention.core.data.sources import ReadOptions, find_source, open_dataset
from cxr_attention.core.data.table import UNCERTAIN_POLICIES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="report on a dataset: source, labels, splits by patient, duplicates, quirks",
        description=(
            "Read a dataset as fit does (a ChestX-ray14 folder or phantom, class folders "
            "ROOT/[train|val|test]/CLASS/*, or a CSV of image paths and label columns), decode "
            "every film once, and report what a researcher must know before training on it."
        ),
    )
    p.add_argument("data", metavar="DATA", help="dataset folder, or a CSV file")
    p.add_argument("--labels", default="auto", help="auto (default), all14, paper13 or names")
    p.add_argument("--seed", type=int, default=0, help="seed of the patient carve-outs")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share (0.1)")
    p.add_argument("--test-fraction", type=float, default=0.2, help="test share if none given")
    p.add_argument("--uncertain", choices=UNCERTAIN_POLICIES, default="zeros",
                   help="a table's -1 labels read as 0 (zeros, default) or 1 (ones)")  # fmt: skip
    p.add_argument("--no-decode", dest="decode", action="store_false",
                   help="list and hash the files only, decode no film")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cxr_attention.core.data.audit import audit_films
    from cxr_attention.core.progress import progress_bar

    options = ReadOptions(
        labels=args.labels,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        uncertain=args.uncertain,
    )
    path = Path(args.data).expanduser().resolve()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = find_source(path)
        index = open_dataset(path, options)
    findings = list(index.findings)
    if args.decode:
        show = not args.json and sys.stderr.isatty()
        with progress_bar(total=len(index.items), desc="decode", unit="film", enabled=show) as bar:
            findings += audit_films(index, progress=bar.update).findings()
    report = describe(index, source.title, findings, [str(w.message) for w in caught])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 0


def describe(index, title: str, findings, warnings_seen: list[str]) -> dict:
    """The report as plain data: source, labels, per-split counts, findings."""
    items = index.items
    splits = {}
    for name in ("train", "val", "test"):
        part = items[items["split"] == name]
        splits[name] = {
            "films": len(part),
            "patients": int(part["patient_id"].nunique()),
            "positives": {label: int(part[label].sum()) for label in index.labels},
        }
    return {
        "data": str(index.root),
        "source": index.source,
        "source_title": title,
        "labels": list(index.labels),
        "films": len(items),
        "patients": int(items["patient_id"].nunique()),
        "split_method": index.split_method,
        "seed": index.seed,
        "val_fraction": index.val_fraction,
        "splits": splits,
        "findings": [finding.as_json() | {"line": finding.line()} for finding in findings],
        "warnings": warnings_seen,
    }


def report_lines(report: dict) -> list[str]:
    method = {
        "official": "the official lists; validation carved by patient from train_val",
        "given": "the collection's test split; validation carved by patient from training",
        "patient": "a seeded split by patient (no test split given)",
    }.get(report["split_method"], report["split_method"])
    lines = [
        f"{report['data']}: {report['source_title']}",
        f"{report['films']:,} films of {report['patients']:,} patients; labels: "
        f"{', '.join(report['labels'])}",
        f"splits: {method} (seed {report['seed']}, validation {report['val_fraction']:g})",
    ]
    for name, part in report["splits"].items():
        positives = ", ".join(f"{label} {n:,}" for label, n in part["positives"].items())
        lines.append(
            f"  {name:5s} {part['films']:7,} films  {part['patients']:6,} patients  {positives}"
        )
    lines.append("what to know:")
    lines += [f"- {finding['line']}" for finding in report["findings"]]
    lines += [f"- warning: {message}" for message in report["warnings"]]
    return lines
