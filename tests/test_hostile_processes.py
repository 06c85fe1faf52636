"""A run on the ``processes`` executor killed with SIGKILL leaves no process behind.

SIGKILL runs no clean-up, so the pool's workers must notice on their own that their parent is gone
(:mod:`lapt.tools.executors.processes`); multiprocessing's resource tracker then sees its pipe close
and exits too. The test kills a real `lapt run` and watches every process it had started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state letter) of ``pid``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), fields[0]


def descendants(root: int) -> set[int]:
    """Every living process below ``root``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                parents[int(entry)] = st[0]
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] not in ("Z", "X")  # a zombie has exited; only its entry is left


def test_sigkill_of_a_processes_run_leaves_no_worker_nor_resource_tracker(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lapt.cli", "run", "--space", "nb201", "--source", "cifar10", "--target", "cifar100",
         "--budget", "2000", "--batch-size", "2", "--executor", "processes", "--workers", "2", "--quiet",
         "--run-dir", str(run)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    trials = run / "trials.jsonl"
    deadline = time.monotonic() + 120
    children: set[int] = set()
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.exists() and len(trials.read_text().splitlines()) >= 4:  # the workers are evaluating
            children = descendants(proc.pid)
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    assert len(children) >= 3, children  # two pool workers and the resource tracker at least
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.1)
    survivors = sorted(pid for pid in children if alive(pid))
    for pid in survivors:  # do not leave them to the next test either
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"{len(survivors)} of {len(children)} processes outlived the killed run"
