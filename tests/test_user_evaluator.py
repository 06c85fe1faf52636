"""Evaluate with your own code: a function named MODULE:FUNCTION, or a space file's network builder.

The function's module is a real file on disk, imported by name in every process that evaluates (this
one, spawned worker processes, Ray workers); what it returns, raises or computes as NaN becomes the
trial; its source hash is part of the run identity. The shipped example (examples/digits_family) runs end
to end through `lapt run`, a SIGKILL and `lapt resume`, and the Ray executor.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import lapt
from lapt.cli import main
from lapt.errors import UserError
from lapt.runs.identity import source_sha256
from lapt.spaces import get_space
from lapt.tools.user_evaluator import FunctionEvaluator, outcome_of_result

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "examples" / "toy_space" / "toy_space.toml"
DIGITS_DIR = ROOT / "examples" / "digits_family"

# A function of the toy space: the number of convolutions, a failure for cells without one, NaN for
# cells with a skip on the last edge, and a recorded call per evaluation (to count evaluations).
SCORER = '''\
import json, math, os, time


def score(arch, task):
    with open(os.environ["SCORE_LOG"], "a") as log:
        log.write(json.dumps([arch, task]) + "\\n")
    time.sleep(float(os.environ.get("SCORE_SLEEP", "0")))
    convs = sum(op == "conv_3x3" for op in arch.values())
    if convs == 0:
        raise RuntimeError("no convolution to train")
    if arch["edge_2_3"] == "skip_connect":
        return {"val": math.nan}
    return {"val": 10.0 * convs + len(task), "test": 9.0 * convs, "convs": convs, "kind": "toy"}
'''


def cli(*args: str, timeout: float = 180, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


def scorer(tmp_path: Path, name: str, body: str = SCORER) -> Path:
    folder = tmp_path / f"code_{name}"
    folder.mkdir()
    (folder / f"{name}.py").write_text(body)
    return folder


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the contract: what a function returns, raises or computes -----------------------------------------
@pytest.mark.parametrize(
    "result,status,error",
    [
        (3, "ok", None),
        ({"val": 1.5, "test": 1.0, "params": 2, "note": "x"}, "ok", None),
        (math.nan, "failed", "'val' is nan (not a finite number)"),
        ({"val": 1.0, "test": math.inf}, "failed", "'test' is inf"),
        ({"test": 1.0}, "failed", "'val' is None; expected a number"),
        (True, "failed", "returned bool; expected a number or a mapping"),
        ("0.9", "failed", "returned str"),
        ({"val": 1.0, "curve": [1, 2]}, "failed", "'curve' is a list; extras must be numbers or strings"),
    ],
)
def test_what_a_function_returns_becomes_the_outcome(result, status, error):
    out = outcome_of_result(result, 0.5)
    assert out.status == status and out.cost_s == 0.5
    if error is None:
        assert out.val == float(result if not isinstance(result, dict) else result["val"])
        if isinstance(result, dict):
            assert out.test == 1.0 and out.extras == {"params": 2.0, "note": "x"}
    else:
        assert error in (out.error or "")


def test_function_evaluator_imports_by_name_and_fails_trials_not_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORE_LOG", str(tmp_path / "log"))
    folder = scorer(tmp_path, "scorer_contract")
    toy = get_space(str(TOY))
    ev = FunctionEvaluator("scorer_contract", "score", str(folder))
    assert ev.settings() == {"evaluator": "python:scorer_contract:score", "sha256": ev.sha256}
    out = ev.evaluate(toy, ("conv_3x3", "none", "conv_3x3", "conv_3x3"), "task_a")
    assert (out.status, out.val, out.test, out.extras) == ("ok", 36.0, 27.0, {"convs": 3.0, "kind": "toy"})
    assert lines(tmp_path / "log") == [[dict(zip(toy.layer_names, ("conv_3x3", "none", "conv_3x3", "conv_3x3"),
                                                 strict=True)), "task_a"]]
    raised = ev.evaluate(toy, ("none",) * 4, "task_a")
    assert raised.status == "failed" and raised.error == "RuntimeError: no convolution to train"
    nan = ev.evaluate(toy, ("conv_3x3", "none", "none", "skip_connect"), "task_a")
    assert nan.status == "failed" and "nan" in (nan.error or "")
    with pytest.raises(UserError, match="no module 'not_there'"):
        FunctionEvaluator("not_there", "score", str(folder))
    with pytest.raises(UserError, match=r"cannot import it \(AttributeError"):
        FunctionEvaluator("scorer_contract", "missing", str(folder))


# -- a run with a function evaluator -------------------------------------------------------------------------
def test_run_with_a_function_on_every_local_executor(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORE_LOG", str(tmp_path / "log"))
    folder = scorer(tmp_path, "scorer_runs")
    monkeypatch.chdir(folder)  # `--evaluator python:MODULE:FUNCTION` finds the module in the current folder
    common: dict[str, Any] = {"space": str(TOY), "sources": ["task_a"], "target": "task_b", "budget": 24, "seed": 2,
                              "evaluator": "python:scorer_runs:score", "batch_size": 4}
    ref = lapt.run(**common)
    assert ref.settings.evaluator == "python:scorer_runs:score" and ref.settings.evaluator_path == str(folder)
    statuses = {t.status.value for t in ref.trials}
    assert statuses == {"ok", "failed"} and len(ref.trials) == 24
    failed = [t for t in ref.trials if t.status == "failed"]
    assert all("no convolution" in (t.error or "") or "nan" in (t.error or "") for t in failed)
    best = ref.summary["best"]
    assert best["val"] == 46.0 and best["arch"].count("conv_3x3") == 4
    for executor in ("threads", "processes"):
        par = lapt.run(**common, executor=executor, workers=2)
        assert [t.model_dump(exclude={"cost_s"}) for t in par.trials] == [
            t.model_dump(exclude={"cost_s"}) for t in ref.trials
        ], executor
    assert len(lines(tmp_path / "log")) == 3 * 24  # every evaluation ran the user's code


def test_a_changed_function_refuses_the_resume_and_the_original_resumes_exactly(tmp_path):
    folder = scorer(tmp_path, "scorer_resume")
    env = {"SCORE_LOG": str(tmp_path / "log"), "SCORE_SLEEP": "0.05"}
    args = ("run", "--space", str(TOY), "--source", "task_a", "--target", "task_b", "--budget", "30", "--seed", "1",
            "--evaluator", "python:scorer_resume:score", "--quiet")
    source_sha256.cache_clear()
    ref = tmp_path / "ref"
    out = cli(*args, "--run-dir", str(ref), env=env, cwd=folder, timeout=300)  # the module is in the current folder
    assert out.returncode == 0, out.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "lapt.cli", *args, "--run-dir", str(run)], cwd=folder,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trials = run / "trials.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.exists() and len(trials.read_text().splitlines()) >= 8:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    original = (folder / "scorer_resume.py").read_text()
    (folder / "scorer_resume.py").write_text(original.replace("10.0 * convs", "11.0 * convs"))
    refused = cli("resume", str(run), env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
    assert "the evaluator's code (scorer_resume:score) changed since it started" in refused.stderr
    (folder / "scorer_resume.py").write_text(original)
    resumed = cli("resume", str(run), "--quiet", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    strip = [{k: v for k, v in t.items() if k != "cost_s"} | {"status": t["status"].replace("cached", "ok")}
             for t in lines(run / "trials.jsonl")]
    want = [{k: v for k, v in t.items() if k != "cost_s"} for t in lines(ref / "trials.jsonl")]
    assert strip == want and len(want) == 30
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["evaluator_path"] == str(folder)
    assert config["user_code"]["evaluator"]["ref"] == "scorer_resume:score"


def test_bad_evaluator_options_are_one_line(tmp_path, capsys):
    toml = tmp_path / "lossy.toml"
    shutil.copy(TOY.parent / "toy_table.csv", tmp_path)  # a table is read from the space file's folder
    toml.write_text(TOY.read_text().replace('name = "toy"', 'name = "lossy"').replace(
        "[search]", "[metric]\nhigher_is_better = false\n\n[search]"
    )
        + f'\n[evaluator]\nnetwork = "digits_family:build"\npath = "{DIGITS_DIR}"\n')
    cases = [
        (["--evaluator", "python:nowhere_module:f"], "no module 'nowhere_module'"),
        (["--evaluator", "python:bad name"], "'bad name': expected MODULE:FUNCTION"),
        (["--evaluator", "python"], "space toy names no function"),
        (["--evaluator", "train"], "space toy names no network builder to train"),
        (["--evaluator", "magic"], "unknown evaluator 'magic'"),
    ]
    for extra, needle in cases:
        run_dir = tmp_path / "never"
        code = main(["run", "--space", str(TOY), "--source", "task_a", "--target", "task_b", "--run-dir",
                     str(run_dir), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0], (extra, err)
        assert not run_dir.exists()
    assert main(["eval", str(toml), "none-none-none-none", "--evaluator", "train"]) == 2
    assert "declares a lower-is-better metric" in capsys.readouterr().err


# -- the shipped example: its own network family, trained for real ------------------------------------------------
DIGITS_RUN = ("--source", "digits", "--target", "few_digits", "--budget", "4", "--seed", "0", "--quiet")


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    """A private copy of the example (its code may be edited by a test)."""
    target = tmp_path / "digits_family"
    shutil.copytree(DIGITS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target / "digits_space.toml"


def test_digits_example_runs_with_its_own_function_is_killed_and_resumes_exactly(tmp_path, digits):
    source_sha256.cache_clear()
    ref = tmp_path / "ref"
    out = cli("run", "--space", str(digits), *DIGITS_RUN, "--evaluator", "python", "--run-dir", str(ref))
    assert out.returncode == 0, out.stderr
    assert "best: c16-" in out.stdout and "-gap  val=" in out.stdout
    trials = lines(ref / "trials.jsonl")
    assert len(trials) == 4 and all(t["status"] == "ok" and 0 < t["val"] <= 100 for t in trials)
    assert all(t["extras"]["params"] > 0 for t in trials)
    space = get_space(str(digits))
    assert all(space.is_valid(space.from_str(t["arch"])) for t in trials)
    config = json.loads((ref / "config.json").read_text())
    assert config["settings"]["evaluator"] == "python:digits_eval:evaluate"
    assert set(config["user_code"]) == {"space_file", "table", "evaluator"}

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lapt.cli", "run", "--space", str(digits), *DIGITS_RUN, "--evaluator", "python",
         "--run-dir", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / "trials.jsonl").exists() and len((run / "trials.jsonl").read_text().splitlines()) >= 2:
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    out = cli("resume", str(run), "--quiet")
    assert out.returncode == 0, out.stderr
    got = [{k: v for k, v in t.items() if k != "cost_s"} | {"status": t["status"].replace("cached", "ok")}
           for t in lines(run / "trials.jsonl")]
    assert got == [{k: v for k, v in t.items() if k != "cost_s"} for t in trials]


def test_digits_example_network_builder_trains_with_the_built_in_trainer(tmp_path, digits):
    run = tmp_path / "train"
    out = cli("run", "--space", str(digits), *DIGITS_RUN, "--evaluator", "train", "--epochs", "1",
              "--max-train-images", "256", "--run-dir", str(run))
    assert out.returncode == 0, out.stderr
    trials = lines(run / "trials.jsonl")
    assert len(trials) == 4 and all(t["status"] == "ok" for t in trials)
    assert all(t["extras"]["params"] > 0 and t["extras"]["flops"] > 0 for t in trials)
    assert (run / "split.json").exists()
    # a builder that cannot take a setting stops before the run, with one line and no run directory
    never = tmp_path / "never"
    out = cli("run", "--space", str(digits), *DIGITS_RUN, "--evaluator", "train", "--net", "depth=3",
              "--run-dir", str(never))
    assert out.returncode == 2 and not never.exists()
    assert out.stderr.strip().splitlines() == [
        "lapt: error: network builder digits_family:build cannot build c16-3333-gap: TypeError: build() got an "
        "unexpected keyword argument 'depth'"
    ]


@pytest.mark.ray
def test_digits_example_on_a_local_loopback_ray(tmp_path, digits, monkeypatch):
    pytest.importorskip("ray")
    run = tmp_path / "ray"
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    out = cli("run", "--space", str(digits), *DIGITS_RUN, "--evaluator", "python", "--executor", "ray",
              "--workers", "2", "--batch-size", "2", "--run-dir", str(run), env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    trials = lines(run / "trials.jsonl")
    assert len(trials) == 4 and all(t["status"] == "ok" for t in trials)
    assert json.loads((run / "config.json").read_text())["settings"]["executor"] == "ray"
    # the same architectures score the same in Ray workers as in this process
    local = FunctionEvaluator("digits_eval", "evaluate", str(digits.parent))
    space = get_space(str(digits))
    first = local.evaluate(space, space.from_str(trials[0]["arch"]), "few_digits")
    assert (first.val, first.test) == (trials[0]["val"], trials[0]["test"])
