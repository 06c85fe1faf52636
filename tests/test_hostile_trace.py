"""Live tracing says how many runs did not reach the endpoint, in the session or after a kill.

A run traced live to an endpoint that never answers is killed with SIGKILL: the runs it had written
but not delivered were lost at the endpoint without a word. Now every delivered run is logged next to
the trace (``trace.sent``), and the resumed session's warning names how many runs of the killed
session never arrived; a session whose endpoint refuses names its own count.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_trace import FakeLangSmith

from lapt.runs.trace_file import read_trace

KEY = "lsv2_pt_0123456789abcdef0123456789abcdef_0123456789"
RUN = ("run", "--source", "cifar10", "--target", "cifar100", "--budget", "30", "--seed", "1", "--quiet")


def live_env(url: str) -> dict[str, str]:
    return {**os.environ, "LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": url, "LANGSMITH_API_KEY": KEY}


def test_runs_a_killed_session_never_delivered_are_named_by_the_resume(tmp_path: Path):
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    run = tmp_path / "run"
    try:
        proc = subprocess.Popen([sys.executable, "-m", "lapt.cli", *RUN, "--run-dir", str(run)],
                                env=live_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        trials = run / "trials.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if trials.exists() and len(trials.read_text().splitlines()) >= 10:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    finally:
        silent.close()
    assert (run / "trace.sent").read_text() == ""  # nothing arrived
    ended = {r["id"] for r in read_trace(run).runs if r.get("end_time")}
    assert ended

    with FakeLangSmith() as server:
        out = subprocess.run([sys.executable, "-m", "lapt.cli", "resume", str(run), "--quiet"],
                             env=live_env(server.url), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("lapt: warning: live tracing")]
    assert len(warnings) == 1, out.stderr
    m = re.search(r"(\d+) runs of an earlier, interrupted session never reached it", warnings[0])
    assert m is not None and int(m.group(1)) == len(ended), warnings[0]
    assert "lapt trace upload" in warnings[0]
    # the resumed session's own runs all arrived, and are logged as such
    sent = set((run / "trace.sent").read_text().split())
    assert sent and sent <= set(server.runs) and not sent & ended


def test_a_refusing_endpoint_is_reported_with_the_count_of_runs_lost(tmp_path: Path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # connection refused
    out = subprocess.run([sys.executable, "-m", "lapt.cli", *RUN, "--run-dir", str(tmp_path / "run")],
                         env=live_env(url), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    runs = read_trace(tmp_path / "run").runs
    m = re.search(r"live tracing to \S+ failed \((\d+) of the (\d+) runs written did not reach it", out.stderr)
    assert m is not None, out.stderr
    assert int(m.group(1)) == int(m.group(2)) == sum(1 for r in runs if r.get("end_time"))
