"""The command line as a user meets it: help, the models table, one-line errors."""

import subprocess
import sys

from train.cli import main


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "train.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_models_table_reports_small_attention_overhead(capsys):
    assert main(["models", "--backbones", "mobilenetv2_100", "resnet18"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["backbone", "--backbone", "params"]
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    mobilenet = rows["MobileNetV2"]
    assert mobilenet[1] == "mobilenetv2_100"  # the display name beside the name --backbone takes
    assert mobilenet[2] == "2.24M"  # timm's mobilenetv2_100 trunk (2.22M) + a 14-way head
    assert int(mobilenet[3]) == 2 * 7 * 7 + 2  # 7x7 conv over (max, mean) + batch-norm scale, shift
    assert float(mobilenet[4].rstrip("%")) < 0.1  # under 0.1 % of the parameters
    assert mobilenet[7] == "7x7" and mobilenet[8] == "16x16"
    assert rows["resnet18"][:2] == ["resnet18", "resnet18"]  # a name outside the registry
    # Every row lines up under the header: the --backbone column starts at the same character.
    column = lines[0].index("--backbone")
    assert {line[column:].split()[0] for line in lines[2:4]} == {"mobilenetv2_100", "resnet18"}


def test_bad_flag_gives_one_line_and_status_2():
    result = cli("models", "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_no_command_prints_help():
    result = cli()
    assert result.returncode == 2
    assert "COMMAND" in result.stdout
