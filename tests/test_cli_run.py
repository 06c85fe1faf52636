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


def test_unreachable_llm_leaves_no_run_directory(tmp_path):
    import socket

    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run_dir = tmp_path / "r"
    out = lapt(
        "run",
        "--source",
        "cifar10",
        "--target",
        "cifar100",
        "--budget",
        "3",
        "--quiet",
        "--run-dir",
        str(run_dir),
        "--llm",
        "openai:m",
        "--llm-base-url",
        f"http://127.0.0.1:{port}/v1",
    )
    assert out.returncode == 2 and "cannot reach the LLM endpoint" in out.stderr
    assert not run_dir.exists()


def test_run_stores_principles_and_a_stored_set_seeds_another_space(tmp_path):
    store = tmp_path / "lib.sqlite"
    out = lapt(
        "run",
        "--source",
        "cifar10",
        "--target",
        "cifar100",
        "--budget",
        "6",
        "--quiet",
        "--run-dir",
        str(tmp_path / "r1"),
        "--store",
        str(store),
    )
    assert out.returncode == 0, out.stderr
    listing = lapt("principles", "list", "--store", str(store))
    rows = [line.split()[0] for line in listing.stdout.splitlines()[1:]]
    assert len(rows) == 2  # learned, then adapted once after 5 evaluations
    out = lapt(
        "run",
        "--space",
        "tnb101",
        "--principles",
        rows[0],
        "--target",
        "class_scene",
        "--budget",
        "5",
        "--quiet",
        "--run-dir",
        str(tmp_path / "r2"),
        "--store",
        str(store),
    )
    assert out.returncode == 0, out.stderr
    assert "avg_pool_3x3" in out.stderr and "principles transferred" in out.stderr
    v0 = json.loads((tmp_path / "r2" / "principles" / "v0.json").read_text())
    assert v0["space"] == "tnb101"
    assert all("avg_pool_3x3" not in p["favour"] + p["avoid"] for p in v0["principles"])


def test_training_run_saves_its_split(tmp_path):
    out = lapt(
        "run",
        "--source",
        "cifar10",
        "--target",
        "mnist5k",
        "--evaluator",
        "train",
        "--budget",
        "2",
        "--net",
        "C=4",
        "--net",
        "N=1",
        "--max-train-images",
        "300",
        "--quiet",
        "--no-store",
        "--run-dir",
        str(tmp_path / "t"),
    )
    assert out.returncode == 0, out.stderr
    split = json.loads((tmp_path / "t" / "split.json").read_text())
    assert split["dataset"] == "mnist5k" and len(split["train"]) == 300 and not set(split["train"]) & set(split["val"])
    trials = [json.loads(line) for line in (tmp_path / "t" / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 and all(t["extras"]["params"] > 0 for t in trials if t["status"] == "ok")
