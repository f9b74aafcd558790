"""Print the attention study as Markdown, for docs/attention-study.md: the mechanism x backbone
table, every map against its control, and the plain-words lines, from run folders.

    python benchmarks/attention_study.py RUN... [--study --data DATA --limit N]

A folder that is not itself a run stands for every run under it (assets/zoo, a sweep folder).
Every run needs metrics.json (`cxr-attention evaluate`); with `--study` each run is first studied
(`cxr-attention study`, writes RUN/study.json), otherwise the study.json already there is read.
The tables are the comparison report's own (core.report.study), so the docs and `compare` agree.
Nothing is asserted: latency is a figure on the machine that ran it.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders, or their parent")
    parser.add_argument("--study", action="store_true", help="run `cxr-attention study` first")
    parser.add_argument("--data", help="dataset to study on (default: each run's own)")
    parser.add_argument("--limit", type=int, help="study only the first N films with truth")
    parser.add_argument("--n-resamples", type=int, default=1000, help="paired bootstrap draws")
    args = parser.parse_args()

    from cxr_attention.core.errors import CxrError
    from cxr_attention.core.report.compare import build_report
    from cxr_attention.core.report.render_md import markdown_table
    from cxr_attention.train.commands.compare import expand_runs

    try:
        runs = expand_runs(args.runs)
        if args.study:
            from cxr_attention.core.study.run import run_study

            for run in runs:
                started = time.perf_counter()
                run_study(run, data=args.data, limit=args.limit)
                print(f"studied {run} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        report = build_report(runs, n_resamples=args.n_resamples)
    except CxrError as exc:
        print(f"attention_study: error: {exc}", file=sys.stderr)
        return 2
    section = next((s for s in report.sections if s.key == "study"), None)
    if section is None:
        print("attention_study: no run has study.json: pass --study", file=sys.stderr)
        return 2
    print(f"Data: {report.data}\n")
    for table in section.tables:
        print(markdown_table(table) + "\n")
    print(section.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
