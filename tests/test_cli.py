"""The command line as a user meets it: help, the models table, one-line errors."""

import subprocess
import sys

import pytest

from cxr_attention.train.cli import main
from cxr_attention.train.commands.models import COLUMNS


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cxr_attention.train.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _table(capsys, *args: str) -> tuple[list[str], dict[tuple[str, str], list[str]]]:
    """The models table's lines, and each row's cells keyed by (--backbone, attention)."""
    assert main(["models", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines[2 : lines.index("")]]
    assert all(len(row) == len(COLUMNS) for row in rows)  # no cell holds a space
    return lines, {(row[1], row[2]): row for row in rows}


def test_models_table_shows_each_kind_and_what_a_finer_map_costs(capsys):
    lines, table = _table(capsys, "--backbones", "mobilenetv2_100", "resnet18")
    assert lines[0].split()[:4] == ["backbone", "--backbone", "attention", "params"]
    assert list(table) == [
        (name, kind)
        for name in ("mobilenetv2_100", "resnet18")
        for kind in ("none", "spatial", "cbam", "class")
    ]
    base, spatial = table[("mobilenetv2_100", "none")], table[("mobilenetv2_100", "spatial")]
    cbam, head = table[("mobilenetv2_100", "cbam")], table[("mobilenetv2_100", "class")]
    assert base[0] == "MobileNetV2"  # the display name beside the name --backbone takes
    assert base[3] == "2.24M"  # timm's mobilenetv2_100 trunk (2.22M) + a 14-way head
    assert base[4:6] == ["-", "-"] and base[7] == "-"
    # The gate: a 7x7 conv over (max, mean) + batch-norm scale and shift, under 0.1 %.
    assert int(spatial[4]) == 2 * 7 * 7 + 2 and float(spatial[5].rstrip("%")) < 0.1
    # CBAM adds timm's channel MLP, 1280 -> 80 -> 1280 without biases, to the same gate.
    assert int(cbam[4].replace(",", "")) == 2 * 1280 * (1280 // 16) + 100
    # The class head is a 1x1 conv of 14 filters plus biases, in place of the linear head.
    assert int(head[4].replace(",", "")) == 1280 * 14 + 14
    assert head[3] == base[3] and head[5] == "0.0000%"
    # ... which it runs at each of the 7x7 places instead of once: 2 x 1280 x 14 x (49 - 1) FLOPs.
    assert float(head[7]) == pytest.approx(2 * 1280 * 14 * 48 / 1e6, abs=1e-3)
    assert float(spatial[7]) == pytest.approx(2 * 2 * 49 * 49 / 1e6, abs=1e-3)
    # Output stride 16: 2x finer maps for every kind, and their cost in GFLOPs.
    for row in table.values():
        assert row[-2:] == ["7x7/14x14", "4x4/8x8"]
        assert float(row[8]) > float(row[6])
    assert float(base[6]) == pytest.approx(0.60, abs=0.01)
    assert table[("resnet18", "none")][:2] == ["resnet18", "resnet18"]  # outside the registry
    # Every row lines up under the header: the --backbone column starts at the same character.
    column = lines[0].index("--backbone")
    assert {line[column:].split()[0] for line in lines[2:10]} == {"mobilenetv2_100", "resnet18"}


def test_models_table_marks_a_backbone_that_cannot_dilate(capsys):
    # timm's VGG takes output_stride and asserts 32: the row says n/a instead of failing.
    _, table = _table(capsys, "--backbones", "vgg11", "--kinds", "class")
    assert list(table) == [("vgg11", "none"), ("vgg11", "class")]
    for row in table.values():
        assert row[8] == "n/a" and row[-2:] == ["7x7/-", "4x4/-"]


def test_bad_flag_gives_one_line_and_status_2(capsys):
    # in-process (argparse exits with SystemExit): a subprocess importing torch costs seconds,
    # and the console script itself is run below
    with pytest.raises(SystemExit) as exit_:
        main(["models", "--no-such-flag"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "unrecognized arguments: --no-such-flag" in err


def test_no_command_prints_help():
    # the console script as a user runs it (without a command it imports no model code: quick)
    result = cli()
    assert result.returncode == 2
    assert "COMMAND" in result.stdout
