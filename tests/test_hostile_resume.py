"""A resume continues the run it is given, on the inputs it started with, or refuses without a trace.

A toy-space run is killed with SIGKILL after 20 evaluations. Editing its table (no ``sha256`` declared
in the space file) and resuming used to exit 0 with trials from two tables; now the resume is refused
with one line and the run directory is left byte for byte as it was. With the table restored, a
resume from another working directory (the space was given as a relative path) ends exactly as the
uninterrupted run. A damaged evaluation cache is refused the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "examples" / "toy_space"
BUDGET = 60
RUN = ("--source", "task_a", "--target", "task_b", "--budget", str(BUDGET), "--seed", "2", "--quiet")

pytestmark = pytest.mark.skipif(not (TOY / "toy_space.toml").is_file(), reason="examples/toy_space missing")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lapt.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def toy_copy(folder: Path) -> Path:
    """The toy space without a declared table sha256 (so only the run's own record can catch an edit)."""
    shutil.copytree(TOY, folder)
    toml = folder / "toy_space.toml"
    toml.write_text("".join(line for line in toml.read_text().splitlines(True) if not line.startswith("sha256")))
    return folder


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def state(folder: Path) -> dict[str, bytes]:
    """Every file of a run directory, byte for byte (the lock file is the resumer's, not the run's)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".lock"}


def killed_run(cwd: Path, run: Path, after: int = 20) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lapt.cli", "run", "--space", "toy/toy_space.toml", *RUN, "--run-dir", str(run)],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    trials = run / "trials.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if trials.exists() and len(trials.read_text().splitlines()) >= after:
            break
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run / "summary.json").exists()


def assert_one_line(out: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    err = out.stderr.strip().splitlines()
    assert out.returncode == code, out.stderr
    assert len(err) == 1 and err[0].startswith("lapt: error: ") and needle in err[0], out.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("ref")
    toy_copy(cwd / "toy")
    out = cli("run", "--space", "toy/toy_space.toml", *RUN, "--run-dir", "run", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return cwd / "run"


def test_a_resume_refuses_a_changed_table_and_continues_on_the_original(tmp_path, reference):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    toy = toy_copy(first / "toy")
    run = tmp_path / "run"
    killed_run(first, run)
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["space"] == f"file:{(toy / 'toy_space.toml').resolve()}"  # no longer relative
    assert set(config["input_sha256"]) == {f"space file {toy.resolve() / 'toy_space.toml'}",
                                           f"table {toy.resolve() / 'toy_table.csv'}"}

    table = toy / "toy_table.csv"
    original = table.read_bytes()
    table.write_text(table.read_text().replace("87.60", "97.60"))  # another measurement of one cell
    before = state(run)
    refused = cli("resume", str(run), cwd=second)
    assert_one_line(refused, 2, f"table {table.resolve()} changed since the run started")
    assert state(run) == before  # nothing added, nothing rewritten

    toml = toy / "toy_space.toml"
    toml.write_text(toml.read_text().replace('title = "', 'title = "Edited: '))
    table.write_bytes(original)
    refused = cli("run", "--space", str(toml), *RUN, "--run-dir", str(run), "--resume", cwd=second)
    assert_one_line(refused, 2, f"space file {toml.resolve()} changed since the run started")
    assert state(run) == before

    toml.write_text(toml.read_text().replace('title = "Edited: ', 'title = "'))
    out = cli("resume", str(run), cwd=second)  # another working directory: the relative path is not re-read
    assert out.returncode == 0, out.stderr
    want = [{k: v for k, v in t.items() if k != "cost_s"} for t in lines(reference / "trials.jsonl")]
    got = [{**{k: v for k, v in t.items() if k != "cost_s"}, "status": t["status"].replace("cached", "ok")}
           for t in lines(run / "trials.jsonl")]
    assert got == want and len(got) == BUDGET
    summary, ref = json.loads((run / "summary.json").read_text()), json.loads((reference / "summary.json").read_text())
    summary.pop("wall_s"), ref.pop("wall_s")
    assert summary == ref


@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_a_damaged_evaluation_cache_is_refused_without_changing_anything(tmp_path, damage):
    import sqlite3

    cwd = tmp_path
    toy_copy(cwd / "toy")
    run = tmp_path / "run"
    killed_run(cwd, run)
    cache = run / "eval_cache.sqlite"
    for db in (cache, run / "checkpoints.sqlite"):  # fold the WALs the kill left in: each file holds its data
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    if damage == "garbage":
        cache.write_bytes(b"not a database at all" * 200)
    elif damage == "truncated":
        data = cache.read_bytes()
        cache.write_bytes(data[:4096] + b"\0" * 100 + data[4196 : len(data) // 2])
    else:
        cache.unlink()
        with sqlite3.connect(cache) as conn:
            conn.execute("CREATE TABLE evaluations (key TEXT, value TEXT)")
    before = state(run)
    refused = cli("resume", str(run), cwd=cwd)
    assert_one_line(refused, 2, f"evaluation cache {run / 'eval_cache.sqlite'} is damaged")
    assert state(run) == before
