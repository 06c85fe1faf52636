"""``lapt trace show|upload``: the timeline of a finished, killed or truncated trace; uploads to a local
LangSmith-compatible server (ids intact), and clear one-line errors for bad input and dead endpoints."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest

import lapt
from lapt.cli import main
from lapt.runs.trace_file import TRACE_FILE, TraceWriter, read_trace

sys.path.insert(0, str(Path(__file__).parent))
from test_trace import FakeLangSmith


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=10, seed=3, run_dir=run_dir)
    return run_dir


def killed_copy(src: Path, dst: Path) -> Path:
    """The trace of ``src`` as a kill leaves it: lines as written during the run, the last one cut."""
    runs = sorted(read_trace(src).runs, key=lambda r: r["dotted_order"])
    dst.mkdir()
    client = TraceWriter(dst / TRACE_FILE)
    for run in runs:
        client.post({k: v for k, v in run.items() if k not in ("end_time", "outputs", "error")})
    for run in runs[1 : len(runs) // 2]:  # the root and the second half of the runs never ended
        client.patch(run["id"], {"end_time": run["end_time"], "outputs": run.get("outputs")})
    client.flush()  # what a kill leaves is what was written: no finish()
    with open(dst / TRACE_FILE, "a") as fh:
        fh.write('{"id": "01a2-cut", "name": "evalu')
    return dst


def test_show_prints_the_decision_timeline(traced: Path, capsys):
    assert main(["trace", "show", str(traced)]) == 0
    out = capsys.readouterr().out
    for needle in (
        "nb201 cifar10 -> cifar100, budget 10",
        "principles v0: learned on nb201: cifar10",
        "mask v0 (refiner, round 0): 32 architectures",
        "edge_0_3         skip_connect",
        "rationale: ",
        "evaluations 1-5: 5 runs",
        "round 1: ",
        "mask v1",
        "end: budget after 10 evaluations",
        "spent: 10 evaluations (0 failed), 1 adaptation rounds; 0 LLM calls",
    ):
        assert needle in out, needle
    summary = json.loads((traced / "summary.json").read_text())
    assert f"best: val {summary['best']['val']:.2f}" in out and summary["best"]["arch"] in out
    assert main(["trace", "show", str(traced / TRACE_FILE), "--evaluations"]) == 0
    assert capsys.readouterr().out.count(": ok val ") == 10


def test_show_and_upload_a_killed_truncated_trace(traced: Path, tmp_path: Path, capsys):
    killed = killed_copy(traced, tmp_path / "killed")
    assert main(["trace", "show", str(killed)]) == 0
    captured = capsys.readouterr()
    assert "is truncated (the run was killed while writing it); skipped" in captured.err
    assert "did not finish" in captured.out and "never ended" in captured.out
    assert "principles v0" in captured.out  # what was written before the kill is still shown
    with FakeLangSmith() as server:
        assert main(["trace", "upload", str(killed), "--endpoint", server.url, "--timeout", "10"]) == 0
    captured = capsys.readouterr()
    assert "truncated" in captured.err
    assert server.runs.keys() == {r["id"] for r in read_trace(killed).runs}


@pytest.mark.parametrize("multipart", [True, False])
def test_upload_sends_every_run_with_its_ids(traced: Path, capsys, monkeypatch, multipart: bool):
    key = "lsv2_pt_feedfacefeedfacefeedfacefeedface_00112233"
    monkeypatch.setenv("LANGSMITH_API_KEY", key)
    saved = read_trace(traced).runs
    with FakeLangSmith(multipart=multipart) as server:
        code = main(["trace", "upload", str(traced), "--endpoint", server.url, "--project", "nas-1", "--timeout", "10"])
    out = capsys.readouterr().out
    assert code == 0 and f"uploaded {len(saved)} runs in 1 trace(s)" in out and key not in out
    assert server.runs.keys() == {r["id"] for r in saved}
    for run in saved:
        got = server.runs[run["id"]]
        assert str(got["trace_id"]) == run["trace_id"] and got["dotted_order"] == run["dotted_order"]
        assert got.get("parent_run_id") == run["parent_run_id"] and got["name"] == run["name"]
        assert got["session_name"] == "nas-1"
    paths = [p for m, p, _ in server.requests if m == "POST"]
    assert paths and all(p.endswith("/runs/multipart" if multipart else "/runs/batch") for p in paths[-1:])
    assert all(h.get("x-api-key") == key for m, _, h in server.requests if m == "POST")


def test_upload_to_a_dead_endpoint_fails_fast_with_one_line(traced: Path, capsys):
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    try:
        start = time.monotonic()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert main(["trace", "upload", str(traced), "--endpoint", url, "--timeout", "1"]) == 2
        assert time.monotonic() - start < 5
        assert capsys.readouterr().err.strip() == f"lapt: error: cannot reach LangSmith at {url}: no answer within 1 s"
        url = f"http://127.0.0.1:{closed_port}"
        assert main(["trace", "upload", str(traced), "--endpoint", url]) == 2
        assert capsys.readouterr().err.strip() == f"lapt: error: cannot reach LangSmith at {url}: connection refused"
    finally:
        silent.close()


@pytest.mark.parametrize(
    "setup,args,needle",
    [
        (None, ["show", "{d}/nowhere"], "nowhere does not exist"),
        ("empty", ["show", "{d}"], "trace.jsonl is empty"),
        ("garbage", ["show", "{d}"], "holds no readable run (line 1 is not valid JSON; skipped"),
        ("dir", ["show", "{d}"], "holds no trace.jsonl (was the run made with --no-trace?)"),
        ("empty", ["upload", "{d}"], "trace.jsonl is empty"),
        ("dir", ["upload", "{d}", "--timeout", "0"], "--timeout must be > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, setup, args, needle):
    d = tmp_path / "run"
    d.mkdir()
    if setup == "empty":
        (d / TRACE_FILE).write_text("")
    elif setup == "garbage":
        (d / TRACE_FILE).write_text("not json\n")
    assert main(["trace", *[a.format(d=d) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lapt: error: ") and err.count("\n") == 1 and needle in err, err


def test_run_no_trace_writes_no_trace_file(tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    args = ["run", "--target", "cifar100", "--source", "cifar10", "--budget", "3", "--quiet", "--no-trace"]
    code = main([*args, "--run-dir", str(run_dir)])
    assert code == 0 and (run_dir / "summary.json").is_file() and not (run_dir / TRACE_FILE).exists()
