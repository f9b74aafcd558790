"""The `cxr-attention` command line: one parser, one module per subcommand in `train/commands/`.

Each command module has `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
User mistakes (`CxrError`) end with one line on stderr and exit status 2; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings

from cxr_attention import core
from cxr_attention.core.errors import CxrError

# Order and summaries as shown by --help. Only the command being run is imported, so that
# `cxr-attention phantom` or `--help` never pay for torch and timm.
COMMANDS: dict[str, str] = {
    "phantom": "write a synthetic chest-radiograph set in ChestX-ray14 layout (with lesion masks)",
    "data": "report on a dataset: source, labels, splits by patient, duplicates, quirks",
    "cache": "preprocess every image of a dataset into a fast uint8 cache",
    "fit": "train one variant (a backbone with or without spatial attention)",
    "evaluate": "score a split with a run's checkpoint (writes predictions.csv and metrics.json)",
    "localize": "score attention / Grad-CAM maps against boxes or masks (writes localization.json)",
    "study": "the attention study: maps vs truth and random, faithfulness, cost (study.json)",
    "compare": "paper-style comparison of evaluated runs (report.md, report.html)",
    "sweep": "the paper's grid: each backbone with and without attention, evaluated and compared",
    "predict": "score radiographs (PNG, JPEG, DICOM; files or folders) with a checkpoint",
    "inspect": "print a checkpoint's metadata",
    "models": "table of backbones with and without spatial attention",
    "lungs": "outline the lung fields of films (PNG masks at each film's own size)",
    "fit-lungs": "train the lung-field segmenter on films with manual lung masks",
    "demo": "build the phantom and the demo zoo (if absent), evaluate it, open the app",
    "app": "start the Streamlit app (upload radiographs, switch attention, compare)",
}


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; `command` is the one subcommand whose module is imported and registered."""
    parser = Parser(
        prog="cxr-attention",
        description="Attention-infused CNNs for chest radiographs: train, evaluate, explain, explore.",
    )
    parser.add_argument("--version", action="version", version=f"cxr-attention {core.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, summary in COMMANDS.items():
        if name == command:
            module = name.replace("-", "_")
            importlib.import_module(f"cxr_attention.train.commands.{module}").register(subparsers)
        else:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def _command_in(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"cxr-attention: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    warnings.formatwarning = _one_line_warning  # dataset warnings read as one line, like errors
    parser = build_parser(_command_in(argv))
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
