"""An evaluator written as a hostile (or careless) user would: it calls sys.exit(), returns an int too
large for a float or 10 MB of extras, prints, and changes the working directory in the middle of a run.

Each of these is one failed (or trimmed) trial and the search goes on; lapt's own files and result lines
stay where they belong. The evaluators are real modules on disk, imported by name in every process
that evaluates.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lapt.cli import main
from lapt.tools.executors.base import available_cores
from lapt.tools.user_evaluator import CUT_KEY, MAX_EXTRA_CHARS, MAX_EXTRAS, outcome_of_result

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "examples" / "toy_space" / "toy_space.toml"

# Scores the toy space by its number of convolutions; on cells with exactly one convolution it does
# what HOSTILE says. Every call is logged, to count evaluations.
HOSTILE = '''\
import json, os, sys


def score(arch, task):
    with open(os.environ["SCORE_LOG"], "a") as log:
        log.write(json.dumps(arch) + "\\n")
    convs = sum(op == "conv_3x3" for op in arch.values())
    print("evaluator output, not a result line")
    mode = os.environ["HOSTILE"]
    if convs == 1:
        if mode == "exit0":
            sys.exit(0)
        if mode == "exit3":
            sys.exit(3)
        if mode == "huge":
            return 10 ** 400
        if mode == "chdir":
            os.chdir(os.environ["ELSEWHERE"])
    if mode == "extras":
        return {"val": convs, "log": "x" * 10_000_000, **{f"e{i:02d}": i for i in range(40)}}
    return float(convs)
'''
RUN = ("run", "--space", str(TOY), "--source", "task_a", "--target", "task_b", "--budget", "12", "--seed", "3",
       "--evaluator", "python:hostile_eval:score", "--quiet")


def cli(tmp_path: Path, mode: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    code = tmp_path / "code"
    if not code.exists():
        code.mkdir()
        (code / "hostile_eval.py").write_text(HOSTILE)
    env = {**os.environ, "SCORE_LOG": str(tmp_path / "log"), "HOSTILE": mode, "PYTHONPATH": str(code),
           "ELSEWHERE": str(tmp_path / "elsewhere")}
    return subprocess.run([sys.executable, "-m", "lapt.cli", *RUN, *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd or tmp_path)


def trials(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]


def evaluations(tmp_path: Path) -> int:
    return len((tmp_path / "log").read_text().splitlines())


# -- what a function returns --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "result,error",
    [
        (10**400, "the evaluator's 'val' is not a finite number (too large for a float)"),
        ({"val": 1.0, "test": -(10**400)}, "the evaluator's 'test' is not a finite number (too large for a float)"),
        ({"val": 1.0, "params": 10**400}, "the evaluator's 'params' is not a finite number (too large for a float)"),
        ({"val": "x" * 10_000}, "the evaluator's 'val' is 'xxx"),
    ],
)
def test_numbers_too_large_for_a_float_fail_the_trial(result, error):
    out = outcome_of_result(result, 0.1)
    assert out.status == "failed" and out.error is not None and out.error.startswith(error), out.error
    assert len(out.error) < 200


def test_extras_are_capped_and_the_cut_is_said():
    result = {"val": 2, "log": "x" * 10_000_000, "k" * 1000: 1, **{f"e{i:02d}": i for i in range(40)}}
    out = outcome_of_result(result, 0.1)
    assert out.status == "ok" and out.val == 2.0
    assert len(out.extras) == MAX_EXTRAS + 1 and out.extras["log"] == "x" * MAX_EXTRA_CHARS
    assert "k" * MAX_EXTRA_CHARS in out.extras and "e29" in out.extras and "e30" not in out.extras
    note = out.extras[CUT_KEY]
    assert "'log' cut from 10000000 to 200 characters" in note and "a name cut from 1000 characters" in note
    assert "10 extra(s) dropped beyond 32 (e30, e31, e32, e33, e34, ...)" in note
    assert len(json.dumps(out.extras)) < 20_000
    small = outcome_of_result({"val": 1, "note": "fine", "ok": True, "none": None}, 0.1)
    assert small.extras == {"note": "fine", "ok": True, "none": None}  # nothing cut: no note
    assert math.isfinite(small.val or math.nan)


# -- through `lapt run` --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,code", [("exit0", 0), ("exit3", 3)])
def test_sys_exit_in_an_evaluator_fails_that_trial_and_the_search_goes_on(tmp_path, mode, code):
    out = cli(tmp_path, mode, "--run-dir", str(tmp_path / "run"), "--no-store")
    assert out.returncode == 0, out.stderr
    assert "best: " in out.stdout and "run directory: " in out.stdout  # the summary, as after any run
    rows = trials(tmp_path / "run")
    assert len(rows) == 12
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["error"] == f"SystemExit: the evaluator called sys.exit({code})" for r in failed)
    assert all(r["arch"].count("conv_3x3") == 1 for r in failed)


def test_sys_exit_in_a_worker_process_is_one_failed_trial_not_a_lost_worker(tmp_path):
    out = cli(tmp_path, "exit3", "--run-dir", str(tmp_path / "run"), "--no-store", "--executor", "processes",
              "--workers", "2")
    assert out.returncode == 0, out.stderr
    rows = trials(tmp_path / "run")
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["error"].startswith("SystemExit") and "lost" not in r["error"] for r in failed)
    assert evaluations(tmp_path) == 12  # each architecture evaluated once: no retry of a "lost" job


@pytest.mark.parametrize("executor", ["local", "processes"])
def test_an_int_too_large_for_a_float_is_one_failed_trial_evaluated_once(tmp_path, executor):
    workers = ("--workers", "2") if executor != "local" else ()
    out = cli(tmp_path, "huge", "--run-dir", str(tmp_path / "run"), "--no-store", "--executor", executor, *workers)
    assert out.returncode == 0, out.stderr
    failed = [r for r in trials(tmp_path / "run") if r["status"] == "failed"]
    assert failed and all(r["error"] == "the evaluator's 'val' is not a finite number (too large for a float)"
                          for r in failed)
    assert evaluations(tmp_path) == 12


def test_huge_extras_are_cut_in_every_record_of_the_run(tmp_path):
    out = cli(tmp_path, "extras", "--run-dir", str(tmp_path / "run"), "--no-store")
    assert out.returncode == 0, out.stderr
    rows = trials(tmp_path / "run")
    for r in rows:  # lapt adds its own marks (outside_region) beside the evaluator's capped extras
        user = {k: v for k, v in r["extras"].items() if k not in ("outside_region", CUT_KEY)}
        assert len(user) == MAX_EXTRAS and len(user["log"]) == MAX_EXTRA_CHARS and "e31" not in user
        assert "'log' cut from 10000000 to 200 characters" in r["extras"][CUT_KEY]
    size = sum(f.stat().st_size for f in (tmp_path / "run").rglob("*") if f.is_file())
    assert size < 5_000_000, size  # 12 x 10 MB, stored four times over, before the cap


def test_what_an_evaluator_prints_goes_to_stderr_not_among_the_result_lines(tmp_path):
    for executor in ("local", "threads", "processes"):
        workers = ("--workers", "2") if executor != "local" else ()
        run_dir = tmp_path / f"run_{executor}"
        out = cli(tmp_path, "plain", "--run-dir", str(run_dir), "--no-store", "--executor", executor, *workers)
        assert out.returncode == 0, out.stderr
        assert "evaluator output" not in out.stdout, executor
        assert out.stdout.splitlines()[0] == f"run directory: {run_dir}"
        assert out.stderr.count("evaluator output, not a result line") == 12, executor
    evaluated = subprocess.run(
        [sys.executable, "-m", "lapt.cli", "eval", str(TOY), "conv_3x3-conv_3x3-none-none", "--task", "task_b",
         "--evaluator", "python:hostile_eval:score", "--json"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "SCORE_LOG": str(tmp_path / "log"), "HOSTILE": "plain",
             "PYTHONPATH": str(tmp_path / "code")},
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["val"] == 2.0  # stdout is the JSON line alone
    assert "evaluator output" in evaluated.stderr


def test_an_evaluator_that_changes_directory_does_not_move_the_run(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    for executor in ("local", "threads", "processes"):  # in-process, the chdir is the run's own process
        workers = ("--workers", "2") if executor != "local" else ()
        out = cli(tmp_path, "chdir", "--run-dir", f"run_{executor}", "--store", "lib.sqlite", "--executor",
                  executor, *workers, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
        run = tmp_path / f"run_{executor}"
        assert len(trials(run)) == 12 and (run / "summary.json").exists() and (run / "trace.jsonl").exists()
        assert out.stdout.splitlines()[0] == f"run directory: {run}"
        assert (tmp_path / "lib.sqlite").exists()
        assert list((tmp_path / "elsewhere").iterdir()) == []


def test_bench_warns_when_workers_exceed_the_cores(tmp_path, capsys):
    many = available_cores() * 32
    args = ["bench", "--space", str(TOY), "--methods", "rea", "--seeds", "1", "--budget", "4", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "b1"), "--workers", str(many)]) == 0
    err = capsys.readouterr().err
    assert f"lapt: warning: --workers {many} exceeds the {available_cores()} cores of this machine" in err
    assert main([*args, "--out", str(tmp_path / "b2")]) == 0  # the default: one per core, no warning
    err = capsys.readouterr().err
    assert "warning" not in err and f"{available_cores()} worker(s)" in err


# -- a network builder that prints and exits, trained by the JSON worker ----------------------------------------
BUILDER = '''\
import sys

from torch import nn


class Tiny(nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(in_channels, num_classes)

    def forward(self, x):
        print("forward output, not the result")
        return self.fc(self.pool(x).flatten(1))


def build(arch, num_classes, in_channels):
    print("builder output, not the result")
    if arch["l"] == "exit":
        sys.exit(4)
    return Tiny(in_channels, num_classes)
'''


@pytest.mark.parametrize("op,status", [("ok", "ok"), ("exit", "failed")])
def test_a_network_builder_that_prints_or_exits_leaves_the_worker_result_intact(tmp_path, op, status):
    (tmp_path / "tiny_builder.py").write_text(BUILDER)
    request = {"space": "tiny", "genotype": {"l": op}, "builder": {"module": "tiny_builder", "function": "build",
               "path": str(tmp_path)}, "num_threads": 1, "device": "cpu", "max_train_images": 64, "batch_size": 32}
    proc = subprocess.run([sys.executable, "-m", "lapt.tools.train.worker"], input=json.dumps(request),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # stdout is the JSON result alone
    assert result["status"] == status, result["error"]
    assert "builder output, not the result" in proc.stderr
    if status == "ok":
        assert "forward output, not the result" in proc.stderr
    else:
        assert result["error"] == "SystemExit: 4"
