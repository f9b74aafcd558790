"""Progress on stderr: a tqdm bar on a terminal, a few plain lines anywhere else.

Off a terminal (CI, `make demo > log`, nohup) a tqdm bar writes a carriage return on every refresh and
nested bars add cursor-up escapes, so a log fills with debris. Every progress display in the project
goes through `progress_bar`, which decides here, once, what to show:

- on a terminal: a tqdm bar (nested bars vanish when done);
- elsewhere, by `off_terminal`:
  - "lines": a line at each 10 % of the total (at most one per `MIN_LINE_SECONDS`, at least one per
    `HEARTBEAT_SECONDS`) and a closing line with the count, time and rate;
  - "heartbeat": a line per `HEARTBEAT_SECONDS` only, for an inner loop whose caller logs one line
    per step (the batches of an epoch);
  - "silent": nothing, for a loop whose caller already prints a line per item (epochs, `predict`).

Lines are plain text, no carriage return and no escape sequence.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Protocol, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")
OffTerminal = Literal["lines", "heartbeat", "silent"]

LINE_STEPS = 10  # "lines": one line per tenth of the total
MIN_LINE_SECONDS = 5.0  # ... but not more often than this
HEARTBEAT_SECONDS = 60.0  # a line at least this often while anything is shown


class ProgressBar(Protocol):
    """What callers use of a bar; tqdm and `LineProgress` both provide it."""

    def update(self, n: float = 1) -> Any: ...

    def set_postfix(
        self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any
    ) -> None: ...

    def write(self, s: str, file: TextIO | None = None) -> None: ...

    def close(self) -> None: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __enter__(self) -> ProgressBar: ...

    def __exit__(self, *exc: object) -> Any: ...


def stderr_is_terminal() -> bool:
    """Whether stderr is an interactive terminal (False for files, pipes and closed streams)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def progress_bar(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    initial: int = 0,
    nested: bool = False,
    off_terminal: OffTerminal = "lines",
) -> ProgressBar:
    """A progress display on stderr over `iterable` (or advanced by `update`); see the module doc.

    `total` is the number of units expected (default: len(iterable) when it has one); `initial`
    counts units already done (a resumed run); `nested` marks a bar inside another one (removed
    from the terminal when it closes). `enabled=False` shows nothing anywhere.
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if enabled and stderr_is_terminal():
        return tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            leave=not nested,
            file=sys.stderr,
            dynamic_ncols=True,
        )
    mode: OffTerminal = off_terminal if enabled else "silent"
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, mode=mode)


class LineProgress:
    """The off-terminal display: plain lines on stderr, as few as still tell what is happening."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: int | None,
        desc: str,
        unit: str,
        initial: int = 0,
        mode: OffTerminal = "lines",
    ) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.mode = mode
        self.initial = self.n = initial
        self.postfix = ""
        self.started = self.last_line = time.monotonic()
        self.step = self._step()
        self.closed = False

    def _step(self) -> int:
        return int(LINE_STEPS * self.n / self.total) if self.total else 0

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress display was made without an iterable; call update()")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        if self.mode == "silent":
            return
        now = time.monotonic()
        step = self._step()
        new_step = self.mode == "lines" and step > self.step and self.n < (self.total or 0)
        if (new_step and now - self.last_line >= MIN_LINE_SECONDS) or (
            now - self.last_line >= HEARTBEAT_SECONDS
        ):
            self.step = step
            self._print(self._line(now))

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        values = dict(ordered_dict or {}) | kwargs
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def write(self, s: str, file: TextIO | None = None) -> None:
        print(s, file=file or sys.stderr, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.mode == "lines" and self.n > self.initial:
            self._print(self._line(time.monotonic(), closing=True))

    def _line(self, now: float, closing: bool = False) -> str:
        seconds = now - self.started
        rate = (self.n - self.initial) / seconds if seconds > 0 else 0.0
        count = f"{self.n:,.0f}/{self.total:,}" if self.total else f"{self.n:,.0f}"
        if closing:
            text = (
                f"{self.desc}: {count} {self.unit} in {seconds:.0f} s ({rate:,.1f} {self.unit}/s)"
            )
        else:
            share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            text = f"{self.desc}: {count} {self.unit}{share}, {seconds:.0f} s, {rate:,.1f} {self.unit}/s"
        return f"{text}, {self.postfix}" if self.postfix else text

    def _print(self, line: str) -> None:
        self.last_line = time.monotonic()
        print(line, file=sys.stderr, flush=True)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
