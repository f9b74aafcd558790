"""Progress off a terminal is a few plain lines; on a terminal it is a tqdm bar.

The end-to-end test runs the real commands (phantom, cache, fit, evaluate) with stderr going to a
file, as `make demo > log` or CI does, and reads that file.
"""

from __future__ import annotations

import io
import sys
import warnings
from types import SimpleNamespace

import pytest
from tqdm import tqdm

import cxr_attention.core.progress as progress
from cxr_attention.core.progress import LineProgress, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_off_a_terminal_a_line_per_tenth_and_a_closing_line(capsys, monkeypatch):
    monkeypatch.setattr(progress, "MIN_LINE_SECONDS", 0.0)
    bar = progress_bar(total=200, desc="cache 224px", unit="img")
    assert isinstance(bar, LineProgress)  # pytest's captured stderr is not a terminal
    for _ in range(100):
        bar.update(2)
    bar.close()
    bar.close()  # closing twice prints once
    lines = stderr_lines(capsys)
    assert [line.split(" img")[0] for line in lines[:9]] == [
        f"cache 224px: {n}/200" for n in range(20, 200, 20)
    ]
    assert lines[4].startswith("cache 224px: 100/200 img (50%), ")
    assert lines[9].startswith("cache 224px: 200/200 img in ") and lines[9].endswith("img/s)")
    assert len(lines) == 10


def test_lines_are_not_more_frequent_than_the_minimum_spacing(capsys, monkeypatch):
    now = [0.0]  # the bar's clock, moved by the test: the machine's speed does not matter
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: now[0]))
    with progress_bar(total=1000, desc="phantom", unit="img") as bar:
        for _ in range(1000):  # all ten tenths within one second, under MIN_LINE_SECONDS
            now[0] += 0.001
            bar.update(1)
    assert len(stderr_lines(capsys)) == 1  # the closing line alone
    with progress_bar(total=10, desc="phantom", unit="img") as bar:
        for _ in range(10):  # a tenth every MIN_LINE_SECONDS and a bit: each gets its line
            now[0] += progress.MIN_LINE_SECONDS + 0.5
            bar.update(1)
    lines = stderr_lines(capsys)
    assert [line.split(" img")[0] for line in lines[:-1]] == [
        f"phantom: {n}/10" for n in range(1, 10)
    ]
    assert lines[-1].startswith("phantom: 10/10 img in ")


def test_iteration_reports_the_total_of_a_sized_iterable(capsys):
    assert list(progress_bar(range(7), desc="evaluate", unit="batch")) == list(range(7))
    (line,) = stderr_lines(capsys)
    assert line.startswith("evaluate: 7/7 batch in ")


def test_heartbeat_prints_only_on_time_with_the_postfix(capsys, monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.0)
    with progress_bar(total=3, desc="epoch 2", unit="batch", off_terminal="heartbeat") as bar:
        bar.set_postfix(loss="0.412", refresh=False)
        bar.update(1)
    (line,) = stderr_lines(capsys)  # no closing line: the epoch's own log line follows
    assert line.startswith("epoch 2: 1/3 batch (33%), ") and line.endswith(", loss=0.412")


def test_disabled_and_silent_bars_print_nothing(capsys, monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.0)
    for bar in (
        progress_bar(total=3, desc="epochs", unit="epoch", off_terminal="silent"),
        progress_bar(total=3, desc="phantom", unit="img", enabled=False),
    ):
        with bar:
            bar.update(3)
    assert capsys.readouterr().err == ""


def test_on_a_terminal_a_tqdm_bar(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar(total=4, desc="phantom", unit="img") as bar:
        assert isinstance(bar, tqdm)
        bar.update(4)
    assert "\r" in terminal.getvalue() and "4/4" in terminal.getvalue()
    with progress_bar(total=4, desc="phantom", unit="img", enabled=False) as bar:
        assert isinstance(bar, LineProgress)  # disabled: nothing, not even on a terminal


@pytest.mark.timeout(300)
def test_real_commands_logged_to_a_file_have_no_bar_debris(tmp_path, capfd):
    # In this process (a subprocess costs seconds of imports): capfd points file descriptor 2 at a
    # file, as `2> log` does, and sys.stderr at that file; what any library writes there, Python
    # or C, is read back. pytest keeps warnings from stderr: each is counted as the line the CLI
    # would print for it.
    from cxr_attention.train.cli import main

    data, run = str(tmp_path / "data"), str(tmp_path / "run")
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("default")
        assert main(["phantom", data, "--n", "40", "--size", "32", "--workers", "1"]) == 0
        assert main(["cache", data, "--size", "32", "--workers", "1"]) == 0
        fit = ["fit", "--data", data, "--backbone", "test_efficientnet", "--image-size", "32"]
        fit += ["--epochs", "2", "--batch-size", "16", "--workers", "0", "--threads", "1"]
        assert main([*fit, "--labels", "paper13", "--val-fraction", "0.3", "--out", run]) == 0
        assert main(["evaluate", run, "--split", "val"]) == 0
    text = capfd.readouterr().err
    assert "\r" not in text and "\x1b[" not in text
    lines = text.splitlines() + [f"warning: {w.message}" for w in warned]
    assert any(line.startswith("phantom: 40/40 img in ") for line in lines)
    assert any(line.startswith("cache 32px: 40/40 img in ") for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert any(line.startswith("evaluate: 1/1 batch in ") for line in lines)
    assert len(lines) < 15, text  # a handful of lines, not hundreds
