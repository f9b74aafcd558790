"""`cxr-attention compare RUN... --out DIR`: the paper-style report (report.md, report.html)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cxr_attention.core.errors import RunError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="paper-style comparison of evaluated runs (report.md, report.html)",
        description=(
            "Compare evaluated runs: per-class AUC per variant with 95%% CIs, attention minus "
            "baseline per backbone with DeLong p-values (Holm-adjusted) and CIs, early lift, the "
            "paper's numbers beside ours, localization, ROC curves. A folder that is not itself a "
            "run stands for every run folder under it."
        ),
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="evaluated run folders (or their parent)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the report")
    p.add_argument(
        "--n-resamples", type=int, default=1000, help="paired bootstrap resamples (0 = no CIs)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the paired bootstrap")
    p.set_defaults(func=run)


def expand_runs(paths: list[str]) -> list[Path]:
    """Each path as given when it is a run folder, else every run folder under it."""
    from cxr_attention.core.runs import CHECKPOINT, METRICS, find_runs

    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            raise RunError(f"run folder not found: {path}")
        if (path / METRICS).is_file() or (path / CHECKPOINT).is_file():
            found.append(path)
            continue
        below = [r.path for r in find_runs(path)]
        if not below:
            raise RunError(f"{path} holds no run folders (none has checkpoint.pt)")
        found += below
    return found


def run(args: argparse.Namespace) -> int:
    from cxr_attention.core.report import compare_runs

    if args.n_resamples < 0:
        from cxr_attention.core.errors import ConfigError

        raise ConfigError("--n-resamples must be 0 or more")
    paths = compare_runs(
        expand_runs(args.runs), args.out, n_resamples=args.n_resamples, seed=args.seed
    )
    print(f"wrote {paths.markdown}, {paths.html} and {paths.json}")
    return 0
