"""A bench claims its ``--out`` and journals each run as it ends: a killed bench continues to the same files.

Real `lapt bench` processes throughout: a SIGKILL half-way, then the same command again, gives exactly
the ``results.csv`` of an uninterrupted bench, and the killed bench's workers end with it; a second
bench on a folder in use is refused in one line with exit status 2 and leaves the first one's work
alone; a bench continued with other settings is refused without touching the folder. Offline reasoner
and table lookups: deterministic and fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_hostile_processes import alive, descendants

from lapt.cli import main

BENCH = ("bench", "--space", "nb201", "--pair", "cifar10:cifar100", "--seeds", "4", "--budget", "30", "--quiet")
RUNS = 5 * 4  # methods x seeds


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, timeout=timeout)


def journal_lines(out: Path) -> list[str]:
    path = out / "journal.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def start_bench(out: Path, workers: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lapt.cli", *BENCH, "--workers", str(workers), "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_for_lines(proc: subprocess.Popen[str], out: Path, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if len(journal_lines(out)) >= n:
            return
        time.sleep(0.005)
    assert proc.poll() is None, "the bench ended before it could be killed"
    raise AssertionError(f"no {n} journal lines after {timeout} s: the bench writes nothing as it goes")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "bench"
    done = cli(*BENCH, "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_a_bench_killed_half_way_continues_to_the_uninterrupted_results(tmp_path, reference, capsys):
    out = tmp_path / "killed"
    proc = start_bench(out, workers=2)
    wait_for_lines(proc, out, RUNS // 2)
    children = descendants(proc.pid)
    assert len(children) >= 3, children  # the forkserver and two workers at least
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.1)
    survivors = sorted(pid for pid in children if alive(pid))
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"{len(survivors)} of {len(children)} processes outlived the killed bench"
    kept = journal_lines(out)
    assert RUNS // 2 <= len(kept) < RUNS and not (out / "results.csv").exists()
    assert main(["report", str(out)]) == 2
    assert "holds an unfinished bench (its journal, no results yet)" in capsys.readouterr().err
    with open(out / "journal.jsonl", "a") as fh:  # the line a kill in the middle of a write leaves
        fh.write(kept[-1][: len(kept[-1]) // 2])

    # The same command continues it (on one worker now: how fast it runs is not part of the bench).
    again = cli(*BENCH, "--workers", "1", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert f"continuing the bench in {out}: {len(kept)} of {RUNS} runs are done" in again.stderr
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()
    got, want = json.loads((out / "curves.json").read_text()), json.loads((reference / "curves.json").read_text())
    assert got["curves"] == want["curves"] and got["masks"] == want["masks"]
    assert (got["continued_runs"], want["continued_runs"]) == (len(kept), 0)
    assert len(journal_lines(out)) == RUNS  # the torn line was dropped, each run is there once
    assert "came from the journal of an interrupted one" in (out / "summary.md").read_text()

    # A finished bench is not run again.
    done = cli(*BENCH, "--workers", "1", "--out", str(out))
    assert done.returncode == 2 and "already holds a bench" in done.stderr


def test_a_second_bench_on_the_same_out_is_refused_while_the_first_runs(tmp_path, reference):
    out = tmp_path / "shared"
    first = start_bench(out)
    try:
        wait_for_lines(first, out, 1)
        before = journal_lines(out)
        second = cli(*BENCH, "--workers", "1", "--out", str(out))
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"--out {out} is in use by another lapt process (pid {first.pid})" in lines[0]
        assert journal_lines(out)[: len(before)] == before
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert (out / "results.csv").read_text() == (reference / "results.csv").read_text()


def test_a_bench_continued_with_other_settings_is_refused_and_nothing_changes(tmp_path, capsys):
    out = tmp_path / "other"
    proc = start_bench(out)
    wait_for_lines(proc, out, 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"}  # the lock names its holder
    assert main([*BENCH[:-3], "--budget", "31", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds an unfinished bench with other settings (differs in: budget)" in err[0]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".lock"} == files


def test_bad_input_leaves_no_bench_folder(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["bench", "--space", "nb201", "--pair", "cifar10:nope", "--out", str(out), "--quiet"]) == 2
    assert not out.exists()
    capsys.readouterr()
