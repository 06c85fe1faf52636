"""Ctrl-C stops a run on every local executor while an evaluation hangs; --eval-timeout fails it and goes on.

Real `lapt run` processes and a real SIGINT: the evaluator (a function of the toy space) never returns
for some architectures. Ctrl-C used to stop only a run on the ``local`` executor evaluating one
architecture at a time: with ``threads``, ``processes`` or ``ray``, or a batch, the main thread was
interrupted, then waited for the hung evaluation for ever (the evaluation node's thread pool, the
executor's clean-up, the interpreter's exit all joined it). Now the
run ends at once with status 130, leaves no worker behind, and resumes. ``--eval-timeout`` fails an
evaluation that runs too long, with the reason, on every executor, and is not retried.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_hostile_processes import alive, descendants

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "examples" / "toy_space"
HANGING = '''\
import os, pathlib, time


def score(arch, task):
    convs = sum(op == "conv_3x3" for op in arch.values())
    if os.environ.get("HANG_AT") and convs >= int(os.environ["HANG_AT"]):
        pathlib.Path(os.environ["HANG_MARK"]).touch()
        while True:
            time.sleep(0.5)
    return convs + 0.5
'''
EXECUTORS = ("local", "threads", "processes")


def space(tmp_path: Path) -> Path:
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "toy_table.csv").write_bytes((TOY / "toy_table.csv").read_bytes())
    text = (TOY / "toy_space.toml").read_text() + '\n[evaluator]\nfunction = "hanging_score:score"\n'
    (folder / "toy_space.toml").write_text(text)
    (folder / "hanging_score.py").write_text(HANGING)
    return folder / "toy_space.toml"


def run_args(toml: Path, run: Path, executor: str, budget: int, *extra: str) -> list[str]:
    workers = [] if executor == "local" else ["--workers", "2"]
    return [sys.executable, "-m", "lapt.cli", "run", "--space", str(toml), "--source", "task_a", "--target", "task_b",
            "--budget", str(budget), "--evaluator", "python", "--executor", executor, *workers, "--quiet",
            "--run-dir", str(run), *extra]


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


RAY = pytest.param("ray", marks=pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray"))


@pytest.mark.parametrize("executor", [*EXECUTORS, RAY])
def test_one_sigint_stops_a_run_whose_evaluation_hangs_and_the_run_resumes(tmp_path, executor):
    toml, run, mark = space(tmp_path), tmp_path / "run", tmp_path / "hanging"
    env = {**os.environ, "HANG_AT": "0", "HANG_MARK": str(mark)}  # every evaluation hangs
    proc = subprocess.Popen(run_args(toml, run, executor, 6, "--batch-size", "2"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180  # a local Ray takes a while to start
    while time.monotonic() < deadline and proc.poll() is None and not mark.exists():
        time.sleep(0.05)
    assert proc.poll() is None and mark.exists(), proc.stderr.read() if proc.stderr else ""
    time.sleep(0.3)  # the evaluation is well inside its hang
    children = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        for pid in [proc.pid, *children]:
            os.kill(pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{executor}: still running 20 s after Ctrl-C")
    assert proc.returncode == 130 and err.strip().endswith("lapt: interrupted"), err
    assert time.monotonic() - start < 10
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.1)
    assert not [pid for pid in children if alive(pid)], "a worker outlived the interrupted run"

    # The interrupted run is a run like a killed one: it resumes (the evaluator does not hang any more).
    done = subprocess.run([sys.executable, "-m", "lapt.cli", "resume", str(run), "--quiet"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HANG_MARK": str(mark)})
    assert done.returncode == 0, done.stderr
    trials = lines(run / "trials.jsonl")
    assert len(trials) == 6 and all(t["status"] in ("ok", "cached") for t in trials)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_eval_timeout_fails_the_evaluation_with_the_reason_and_the_search_goes_on(tmp_path, executor):
    toml, run = space(tmp_path), tmp_path / "run"
    env = {**os.environ, "HANG_AT": "3", "HANG_MARK": str(tmp_path / "hanging")}  # three convolutions or more hang
    start = time.monotonic()
    done = subprocess.run(run_args(toml, run, executor, 12, "--batch-size", "2", "--eval-timeout", "1"), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trials = lines(run / "trials.jsonl")
    slow = [t for t in trials if t["arch"].count("conv_3x3") >= 3]
    fast = [t for t in trials if t["arch"].count("conv_3x3") < 3]
    assert len(trials) == 12 and slow and fast
    assert all(t["status"] == "ok" and t["val"] == t["arch"].count("conv_3x3") + 0.5 for t in fast)
    what = "its worker process was stopped" if executor == "processes" else "its thread cannot be stopped"
    for t in slow:
        assert t["status"] == "failed" and t["extras"] == {"timed_out": True}, t  # failed once, never retried
        assert t["error"].startswith("timed out: the evaluation was still running after --eval-timeout 1 s"), t
        assert what in t["error"]
    assert time.monotonic() - start < 60
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["eval_timeout"] == 1.0


@pytest.mark.parametrize(
    "extra,needle",
    [
        (("--eval-timeout", "0"), "--eval-timeout must be a finite number of seconds > 0, got 0"),
        (("--eval-timeout", "nan"), "--eval-timeout must be a finite number of seconds > 0, got nan"),
        (
            ("--eval-timeout", "5", "--executor", "ray"),
            "--eval-timeout is not supported with --executor ray; use --executor processes",
        ),
    ],
)
def test_bad_eval_timeouts_are_one_line(tmp_path, extra, needle):
    out = subprocess.run([sys.executable, "-m", "lapt.cli", "run", "--space", "nb201", "--source", "cifar10",
                          "--target", "cifar100", "--run-dir", str(tmp_path / "r"), *extra],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [f"lapt: error: {needle}"], out.stderr
    assert not (tmp_path / "r").exists()
