"""Durable runs: SIGKILL a real `lapt run`, resume it, and get exactly the uninterrupted run.

Also: the evaluation cache answers evaluations whose checkpoint was lost (none is paid twice), a
second process resuming the same folder is refused without harming the first, resumes with other
code or settings are refused without touching the folder, and runs in different folders running at
once do not interfere. Offline reasoner and tabular evaluation throughout: deterministic and fast.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import lapt
from lapt.runs.identity import source_sha256
from lapt.tools.evaluation import Outcome, TabularEvaluator

BUDGET = 40
RUN = ("--space", "nb201", "--source", "cifar10", "--target", "cifar100", "--budget", str(BUDGET), "--quiet")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, timeout=timeout)


def fresh_source_hash() -> None:
    """Hash the package source as it is now, as the `lapt` subprocesses will (the hash is cached per process)."""
    source_sha256.cache_clear()


def reference(tmp_path_factory: pytest.TempPathFactory, seed: int, batch_size: int = 1) -> Path:
    fresh_source_hash()
    path = tmp_path_factory.mktemp("ref") / f"seed{seed}-b{batch_size}"
    lapt.run(
        space="nb201", sources=["cifar10"], target="cifar100", budget=BUDGET, seed=seed, run_dir=path,
        batch_size=batch_size,
    )
    return path


@pytest.fixture(scope="module")
def ref_seed3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference(tmp_path_factory, 3)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def same_trials(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Trials equal apart from wall time; a cached result counts as the ok result it replays."""

    def norm(ts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**{k: v for k, v in t.items() if k != "cost_s"}, "status": t["status"].replace("cached", "ok")}
                for t in ts]

    return norm(a) == norm(b)


def assert_same_run(run: Path, ref: Path) -> None:
    assert same_trials(lines(run / "trials.jsonl"), lines(ref / "trials.jsonl"))
    assert len(lines(run / "trials.jsonl")) == BUDGET
    got, want = json.loads((run / "summary.json").read_text()), json.loads((ref / "summary.json").read_text())
    got.pop("wall_s"), want.pop("wall_s")
    assert got == want
    assert (run / "decisions.jsonl").read_text() == (ref / "decisions.jsonl").read_text()
    for folder in ("principles", "masks"):
        names = sorted(p.name for p in (ref / folder).iterdir())
        assert sorted(p.name for p in (run / folder).iterdir()) == names
        assert all((run / folder / n).read_bytes() == (ref / folder / n).read_bytes() for n in names)


def cache_stats(run: Path) -> dict[str, int]:
    with sqlite3.connect(run / "eval_cache.sqlite") as conn:
        n, computed, hits = conn.execute("SELECT COUNT(*), SUM(computed), SUM(hits) FROM evaluations").fetchone()
    return {"entries": n, "computed": computed, "hits": hits}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of the run's record files (not the lock, the databases' internals or the trace)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.name not in (".lock", "trace.jsonl") and ".sqlite" not in p.name
    }


class Crash(BaseException):
    """Stands for the process dying in the middle of an evaluation batch (not an evaluation failure)."""


class CrashingTable:
    """The NB201 table (same cache key), dying at evaluation ``crash_at`` after its batch-mate finished."""

    def __init__(self, crash_at: int):
        self.inner = TabularEvaluator.for_space(lapt.api.get_space("nb201"))
        self.name = self.inner.name
        self.crash_at = crash_at
        self.calls = 0

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()

    def evaluate(self, space: Any, genotype: Any, task: str) -> Outcome:
        self.calls += 1
        if self.calls == self.crash_at:
            time.sleep(0.3)  # the other evaluation of the batch finishes (and is cached) first
            raise Crash()
        return self.inner.evaluate(space, genotype, task)


def crashed_run(path: Path, crash_at: int, batch_size: int = 1, seed: int = 3, **extra: Any) -> None:
    fresh_source_hash()
    with pytest.raises(Crash):
        lapt.run(
            space="nb201", sources=["cifar10"], target="cifar100", budget=BUDGET, seed=seed, run_dir=path,
            batch_size=batch_size, evaluator=CrashingTable(crash_at), **extra,
        )
    assert not (path / "summary.json").exists()


# -- tests ----------------------------------------------------------------------------------------
def test_sigkill_mid_run_then_resume_equals_the_uninterrupted_run(tmp_path, ref_seed3):
    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lapt.cli", "run", *RUN, "--seed", "3", "--run-dir", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    trials = run / "trials.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.exists() and len(trials.read_text().splitlines()) >= 15:
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run / "summary.json").exists()

    out = cli("resume", str(run), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "best:" in out.stdout
    assert_same_run(run, ref_seed3)
    stats = cache_stats(run)
    assert stats["entries"] == BUDGET and stats["computed"] == BUDGET  # no evaluation paid twice


def test_cache_answers_evaluations_whose_checkpoint_was_lost(tmp_path, tmp_path_factory):
    # Batch of 2: evaluation 21 is cached, then evaluation 22 dies before the batch's checkpoint.
    ref = reference(tmp_path_factory, 3, batch_size=2)
    run = tmp_path / "crashed"
    crashed_run(run, crash_at=22, batch_size=2)
    assert len(lines(run / "trials.jsonl")) == 20
    assert cache_stats(run)["entries"] == 21

    result = lapt.api.resume(run)
    statuses = [t.status.value for t in result.trials]
    assert statuses.count("cached") == 1 and statuses[20:22] in (["cached", "ok"], ["ok", "cached"])
    assert_same_run(run, ref)
    assert cache_stats(run) == {"entries": BUDGET, "computed": BUDGET, "hits": 1}


def test_run_resume_continues_and_plain_run_refuses(tmp_path, ref_seed3):
    run = tmp_path / "r"
    crashed_run(run, crash_at=11)
    refused = cli("run", *RUN, "--seed", "3", "--run-dir", str(run))
    assert refused.returncode == 2 and "already holds a run" in refused.stderr
    out = cli("run", *RUN, "--seed", "3", "--run-dir", str(run), "--resume")
    assert out.returncode == 0, out.stderr
    assert_same_run(run, ref_seed3)
    before = snapshot(run)
    again = lapt.api.resume(run)  # a finished run: returned as it is, not re-run
    assert again.summary == json.loads((run / "summary.json").read_text()) and len(again.trials) == BUDGET
    assert snapshot(run) == before


def test_resume_keeps_the_principles_the_run_was_given(tmp_path):
    learned = lapt.run(space="nb201", sources=["ImageNet16-120"], target="cifar10", budget=2, seed=0).principles[0]
    given = learned.model_copy(update={"source": "a principles.json from lapt learn --out"})
    kw: dict[str, Any] = {"initial_principles": given, "max_ops": 3}
    ref = tmp_path / "ref"
    lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=BUDGET, seed=3, run_dir=ref, **kw)
    run = tmp_path / "r"
    crashed_run(run, crash_at=9, **kw)
    lapt.api.resume(run)
    assert_same_run(run, ref)
    assert lines(run / "decisions.jsonl")[0]["note"] == f"given: {given.source}"


def test_second_resumer_is_refused_and_the_first_is_unharmed(tmp_path, ref_seed3):
    run = tmp_path / "r"
    crashed_run(run, crash_at=6)
    go = tmp_path / "go"
    # The first resumer holds its evaluations until the second one has tried.
    held = (
        "import pathlib, sys, time, lapt.api\n"
        "from lapt.tools.evaluation import TabularEvaluator\n"
        "class Held(TabularEvaluator):\n"
        "    def evaluate(self, *a):\n"
        "        t = time.monotonic()\n"
        "        while not pathlib.Path(sys.argv[2]).exists() and time.monotonic() - t < 60:\n"
        "            time.sleep(0.01)\n"
        "        return super().evaluate(*a)\n"
        "lapt.api.resume(sys.argv[1], evaluator=Held.for_space(lapt.api.get_space('nb201')))\n"
    )
    first = subprocess.Popen([sys.executable, "-c", held, str(run), str(go)], stderr=subprocess.PIPE, text=True)
    lock = run / ".lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and lock.read_text().strip() != str(first.pid):
        assert first.poll() is None, first.communicate()[1]
        time.sleep(0.02)
    second = cli("resume", str(run), "--quiet")
    assert first.poll() is None, "the first resumer ended before the second tried"
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"lapt: error: run directory {run} is in use by another lapt process (pid {first.pid}); wait for it to end"
    ]
    go.touch()
    assert first.wait(timeout=120) == 0, first.communicate()[1]
    assert_same_run(run, ref_seed3)


REFUSALS = {
    "version": (lambda c: c.update(lapt_version="0.0.1"), "it was started by lapt 0.0.1"),
    "source": (lambda c: c.update(source_sha256="0" * 64), "the lapt source changed since it started"),
    "edited-config": (lambda c: c["settings"].update(budget=BUDGET + 5), "config.json was changed after the run"),
    "prompts": (lambda c: c["prompt_hashes"].update({"learner.md": "0" * 64}), "prompt file(s) changed"),
    "other-settings": (None, "other settings (seed: 3 -> 4)"),
}


def test_resume_refuses_other_code_or_config_and_touches_nothing(tmp_path):
    procs, befores = {}, {}
    for case, (tamper, _) in REFUSALS.items():
        run = tmp_path / case
        crashed_run(run, crash_at=8)
        if tamper is None:  # `lapt run --resume` with settings other than the run's
            args = ["run", *RUN, "--seed", "4", "--run-dir", str(run), "--resume"]
        else:
            config = json.loads((run / "config.json").read_text())
            tamper(config)
            (run / "config.json").write_text(json.dumps(config))
            args = ["resume", str(run)]
        befores[case] = snapshot(run)
        procs[case] = subprocess.Popen(
            [sys.executable, "-m", "lapt.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    for case, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (case, err)
        assert len(err.strip().splitlines()) == 1 and REFUSALS[case][1] in err, (case, err)
        assert snapshot(tmp_path / case) == befores[case], case


def test_concurrent_runs_in_different_folders_do_not_interfere(tmp_path, tmp_path_factory, ref_seed3):
    ref5 = reference(tmp_path_factory, 5)
    procs = []
    for seed in (3, 5):
        args = ["run", *RUN, "--seed", str(seed), "--run-dir", str(tmp_path / str(seed))]
        cmd = [sys.executable, "-m", "lapt.cli", *args]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.communicate()[1]
    assert_same_run(tmp_path / "3", ref_seed3)
    assert_same_run(tmp_path / "5", ref5)


def test_a_cached_trial_counts_as_a_successful_one(nb201):
    from lapt.schemas import Status, Trial
    from lapt.search.metrics import evals_to_reach, incumbent_curve
    from lapt.tools.evaluation import fitness_of

    def trial(i: int, status: Status, val: float | None) -> Trial:
        return Trial(index=i, arch=f"a{i}", task="t", status=status, val=val, fitness=fitness_of(nb201, status, val))

    trials = [trial(0, Status.OK, 70.0), trial(1, Status.CACHED, 75.0), trial(2, Status.FAILED, None)]
    assert trials[1].fitness == 75.0 and trials[2].fitness is None
    assert incumbent_curve(trials)[-1] is trials[1]
    assert evals_to_reach(trials, 75.0) == 2
