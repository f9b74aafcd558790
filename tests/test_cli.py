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
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.startswith(("Mobile", "resnet18"))
    }
    mobilenet = rows["MobileNetV2"]
    assert mobilenet[1] == "2.24M"  # timm's mobilenetv2_100 trunk (2.22M) + a 14-way head
    assert int(mobilenet[2]) == 2 * 7 * 7 + 2  # 7x7 conv over (max, mean) + batch-norm scale, shift
    assert float(mobilenet[3].rstrip("%")) < 0.1  # under 0.1 % of the parameters
    assert mobilenet[6] == "7x7" and mobilenet[7] == "16x16"


def test_bad_flag_gives_one_line_and_status_2():
    result = cli("models", "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_no_command_prints_help():
    result = cli()
    assert result.returncode == 2
    assert "COMMAND" in result.stdout
