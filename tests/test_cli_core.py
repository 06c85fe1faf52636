"""The core CLI commands, run as a user would (a subprocess), including bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def lapt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, timeout=120)


def test_spaces_lists_sizes():
    out = lapt("spaces")
    assert out.returncode == 0
    assert "15,625" in out.stdout and "4,096" in out.stdout and "darts" in out.stdout


def test_eval_prints_metrics():
    out = lapt("eval", "nb201", BEST_C10, "--task", "cifar10")
    assert out.returncode == 0, out.stderr
    assert "test=94.373" in out.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (("eval", "nb999", "x", "--task", "cifar10"), "unknown space"),
        (("eval", "nb201", BEST_C10, "--task", "mnist"), "unknown task"),
        (("eval", "nb201", "|conv~0|", "--task", "cifar10"), "malformed"),
        (("eval", "nb201", BEST_C10.replace("nor_conv_1x1", "conv_5x5"), "--task", "cifar10"), "unknown op"),
        (("eval", "tnb101", "64-41414-9_99_999", "--task", "jigsaw"), "malformed"),
        (("eval", "nb201", BEST_C10), "--task is required"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_input_one_line_exit_2(args, needle):
    out = lapt(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert needle in lines[0]
    assert "Traceback" not in out.stderr
