"""`lapt run` and `lapt learn` through the CLI with the offline reasoner, as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys


def lapt(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_run_writes_a_complete_run_directory(tmp_path):
    run_dir = tmp_path / "r1"
    out = lapt(
        "run",
        "--space",
        "nb201",
        "--source",
        "cifar10",
        "--target",
        "cifar100",
        "--budget",
        "12",
        "--seed",
        "2",
        "--run-dir",
        str(run_dir),
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    assert "offline principle miner" in out.stderr
    assert "best:" in out.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["settings"]["sources"] == ["cifar10"] and "learner.md" in config["prompt_hashes"]
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 12 and [t["index"] for t in trials] == list(range(12))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["evaluations"] == 12 and summary["best"]["test"] is not None
    assert {"evals_to_optimum", "evals_to_top0.1%", "usage"} <= set(summary)
    assert (run_dir / "principles" / "v0.json").exists() and (run_dir / "masks" / "v0.json").exists()
    decisions = [json.loads(line) for line in (run_dir / "decisions.jsonl").read_text().splitlines()]
    assert decisions[0]["agent"] == "learner" and decisions[0]["saw_tasks"] == ["cifar10"]


def test_run_refuses_an_existing_run(tmp_path):
    args = (
        "run",
        "--source",
        "cifar10",
        "--target",
        "cifar100",
        "--budget",
        "3",
        "--run-dir",
        str(tmp_path / "r"),
        "--quiet",
    )
    assert lapt(*args).returncode == 0
    again = lapt(*args)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_default_run_dir_under_runs(tmp_path):
    out = lapt("run", "--source", "cifar10", "--target", "ImageNet16-120", "--budget", "3", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_learn_prints_and_saves(tmp_path):
    out = lapt("learn", "--space", "tnb101", "--source", "jigsaw", "--out", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr
    assert "refined space: 729 of 4,096" in out.stdout
    saved = json.loads((tmp_path / "p" / "principles.json").read_text())
    assert saved["tasks_seen"] == ["jigsaw"] and saved["principles"]
