"""What a run shows while it trains: log lines and progress bars on stderr, from rank 0 only.

Library code logs through `logging` (logger ``core.training``); `console_logging` is what the
command line calls so those lines print above the progress bars instead of tearing them. Off a
terminal the bars give way to the log's one line per epoch (see `core.progress`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

from cxr_attention.core.progress import ProgressBar, progress_bar

T = TypeVar("T")
log = logging.getLogger("cxr_attention.core.training")


class TqdmHandler(logging.Handler):
    """A logging handler that writes through `tqdm.write`, keeping active bars intact."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except (OSError, ValueError):  # closed stream at interpreter exit
            self.handleError(record)


def console_logging(level: int = logging.INFO) -> None:
    """Show `core.*` log lines on stderr as plain messages (idempotent)."""
    logger = logging.getLogger("cxr_attention.core")
    if not any(isinstance(h, TqdmHandler) for h in logger.handlers):
        handler = TqdmHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


class Reporter:
    """Log lines and bars for one process: silent on ranks other than 0."""

    def __init__(self, is_main: bool, bars: bool) -> None:
        self.is_main = is_main
        self.bars = bars and is_main

    def info(self, message: str, *args: object) -> None:
        if self.is_main:
            log.info(message, *args)

    def warning(self, message: str, *args: object) -> None:
        if self.is_main:
            log.warning(message, *args)

    def epochs(self, first: int, last: int) -> ProgressBar:
        """A bar over epochs `first`..`last` (1-based, inclusive); resumed runs start part-full.
        Off a terminal it shows nothing: the loop logs one line per epoch."""
        return progress_bar(
            total=last,
            initial=first - 1,
            desc="epochs",
            unit="epoch",
            enabled=self.bars,
            off_terminal="silent",
        )

    def batches(self, items: Iterable[T], total: int, desc: str) -> Iterator[T]:
        """A bar over one epoch's batches; off a terminal, a line a minute (long epochs only)."""
        return iter(
            progress_bar(
                items,
                total=total,
                desc=desc,
                unit="batch",
                enabled=self.bars,
                nested=True,
                off_terminal="heartbeat",
            )
        )
