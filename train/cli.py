"""The `cxr-attention` command line: one parser, one module per subcommand in `train/commands/`.

Each command module has `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
User mistakes (`CxrError`) end with one line on stderr and exit status 2; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

import core
from core.errors import CxrError

# Order as shown by --help.
COMMANDS = (
    "phantom",
    "cache",
    "fit",
    "evaluate",
    "localize",
    "compare",
    "sweep",
    "predict",
    "inspect",
    "models",
    "demo",
    "app",
)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="cxr-attention",
        description="Attention-infused CNNs for chest radiographs: train, evaluate, explain, explore.",
    )
    parser.add_argument("--version", action="version", version=f"cxr-attention {core.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"train.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"train.commands.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Nothing is ever fetched from a model hub at run time: fail fast instead of retrying for a minute.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CxrError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"cxr-attention {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cxr-attention {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
