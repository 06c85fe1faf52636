"""The machine refuses, or a file is not what it seems: one line, the right exit status, nothing half-done.

Environment failures (an unwritable folder, a closed pipe, a full disk) end with exit status 1 and
one line; bad input with exit status 2. Folders are made unwritable with ``chmod``; when the tests run
as root (who writes anyway) the command runs without the capability that lets root ignore file
permissions (``setpriv``). A full disk is a file-size limit (``RLIMIT_FSIZE``) on a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "examples" / "toy_space"
LAPT = [sys.executable, "-m", "lapt.cli"]


def unprivileged(argv: list[str]) -> list[str]:
    """``argv`` as a command that file permissions apply to (root ignores them)."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unwritable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *argv]


def run(argv: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=180, **kw)  # type: ignore[call-overload]


def one_line(out: subprocess.CompletedProcess[str], code: int, needle: str) -> str:
    err = out.stderr.strip().splitlines()
    assert out.returncode == code, out.stderr
    assert len(err) == 1 and err[0].startswith("lapt: error: ") and needle in err[0], out.stderr
    assert "Traceback" not in out.stderr
    return err[0]


@pytest.fixture
def read_only(tmp_path: Path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_learn_out_in_an_unwritable_folder_is_refused_before_learning(tmp_path, read_only):
    out = run(unprivileged([*LAPT, "learn", "--space", "nb201", "--source", "cifar10", "--no-store",
                            "--out", str(read_only / "out")]), tmp_path)
    one_line(out, 1, f"--out {read_only / 'out'}: cannot create it (permission denied on {read_only})")
    assert out.stdout == "" and list(read_only.iterdir()) == []  # refused before any principle was printed


def test_learn_store_in_an_unwritable_folder_is_refused_before_learning(tmp_path, read_only):
    store = read_only / "lib" / "principles.sqlite"
    out = run(unprivileged([*LAPT, "learn", "--space", "nb201", "--source", "cifar10", "--store", str(store)]),
              tmp_path)
    one_line(out, 1, "principle store folder")
    assert out.stdout == "" and list(read_only.iterdir()) == []


def _tiny_bench(folder: Path) -> None:
    out = run([*LAPT, "bench", "--space", "nb201", "--pair", "cifar10:cifar100", "--methods", "rea", "--seeds", "1",
               "--budget", "4", "--workers", "1", "--quiet", "--out", str(folder)], folder.parent)
    assert out.returncode == 0, out.stderr


def test_report_on_an_unwritable_bench_and_on_a_binary_results_file(tmp_path):
    bench = tmp_path / "bench"
    _tiny_bench(bench)
    before = {p.name: p.read_bytes() for p in bench.iterdir()}
    bench.chmod(0o555)
    try:
        out = run(unprivileged([*LAPT, "report", str(bench)]), tmp_path)
    finally:
        bench.chmod(0o755)
    one_line(out, 1, f"lapt report {bench}: cannot write to it (permission denied on {bench})")
    assert {p.name: p.read_bytes() for p in bench.iterdir()} == before

    (bench / "results.csv").write_bytes(b"\x00\xff\xfe binary \x00" * 50)
    out = run([*LAPT, "report", str(bench)], tmp_path)
    one_line(out, 2, "results.csv: not UTF-8 text")


def test_a_closed_pipe_is_one_line_and_exit_1(tmp_path):
    proc = subprocess.Popen([*LAPT, "principles", "list", "--store", str(tmp_path / "lib.sqlite")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: the reader is gone before lapt writes
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert err.strip().splitlines() == [
        "lapt: error: the output was closed before it was all written (broken pipe)"
    ]


def test_principle_library_commands_never_write_into_a_foreign_database(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE accounts (name TEXT)")
        conn.execute("INSERT INTO accounts VALUES ('alice')")
    before = other.read_bytes()
    out = run([*LAPT, "principles", "list", "--store", str(other)], tmp_path)
    one_line(out, 2, f"{other} is not a lapt principle library (it holds the table(s) accounts)")
    assert other.read_bytes() == before
    missing = tmp_path / "nowhere" / "lib.sqlite"
    out = run([*LAPT, "principles", "list", "--store", str(missing)], tmp_path)
    assert out.returncode == 0 and "no principle sets" in out.stdout
    assert not missing.parent.exists()  # listing a library that does not exist creates nothing


def test_a_locked_principle_library_costs_a_warning_not_the_run(tmp_path):
    store = tmp_path / "lib.sqlite"
    assert run([*LAPT, "learn", "--space", "nb201", "--source", "cifar10", "--store", str(store)],
               tmp_path).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys, time
            conn = sqlite3.connect({str(store)!r}, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        out = run([*LAPT, "run", "--source", "cifar10", "--target", "cifar100", "--budget", "12", "--quiet",
                   "--store", str(store), "--run-dir", str(tmp_path / "run")], tmp_path)
        took = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if "principle library" in line]
    assert len(warnings) == 1 and "not updated" in warnings[0] and "locked" in warnings[0], out.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["evaluations"] == 12
    assert took < 60  # one bounded wait, not one per principle set


def test_a_space_file_with_a_byte_order_mark_is_read(tmp_path):
    toy = tmp_path / "toy"
    shutil.copytree(TOY, toy)
    toml = toy / "toy_space.toml"
    toml.write_bytes(b"\xef\xbb\xbf" + toml.read_bytes())
    out = run([*LAPT, "spaces", "--file", str(toml)], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "toy" in out.stdout and out.stderr == ""


TRACE_FULL_DISK = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    from lapt.runs.trace_file import TraceWriter

    path = Path(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, resource.RLIM_INFINITY))
    writer = TraceWriter(path)
    failed = 0
    for i in range(40):
        rid = f"00000000-0000-0000-0000-{i:012d}"
        try:  # an LLM call's start is written at once
            writer.post({"id": rid, "trace_id": rid, "dotted_order": rid, "name": "x" * 150, "run_type": "llm"})
        except OSError:
            failed += 1
        try:
            writer.patch(rid, {"end_time": "2025-01-01T00:00:00+00:00", "outputs": {"i": i}})
        except OSError:
            failed += 1
    size = path.stat().st_size
    ends_whole = path.read_bytes().endswith(b"\\n")
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    writer.finish()  # room again: every run is written, whole
    print(json.dumps({"failed": failed, "size": size, "ends_whole": ends_whole}))
    """
)


def test_a_trace_write_the_disk_refuses_leaves_no_half_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    out = run([sys.executable, "-c", TRACE_FULL_DISK, str(path)], tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["failed"] > 0 and report["size"] <= 3000  # the limit was hit ...
    assert report["ends_whole"]  # ... and what was on disk then was whole lines only
    runs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["outputs"]["i"] for r in runs] == list(range(40))  # and nothing was lost once there was room
