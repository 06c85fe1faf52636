"""Decision traces: one LangSmith-format tree per run, every evaluation and decision in it, LLM calls with
token usage and repairs, no secret in any file, live tracing to a local LangSmith-compatible server."""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import socket
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import lapt
from lapt.llm.redaction import Redactor
from lapt.runs.trace_file import TRACE_FILE, TraceWriter, read_trace, tree_problems

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai_basic import FakeOpenAI

EDGES = ("edge_0_1", "edge_0_2", "edge_1_2", "edge_0_3", "edge_1_3", "edge_2_3")
MASK = {
    "rationale": "convolutions everywhere, the skip on 0->3",
    **{e: ["nor_conv_3x3", "nor_conv_1x1"] for e in EDGES},
}
MASK["edge_0_3"] = ["skip_connect"]
DRAFT = {
    "analysis": "3x3 convolutions dominate the top cells",
    "principles": [{"statement": "Prefer nor_conv_3x3 on edge_0_1", "layer": "edge_0_1", "favour": ["nor_conv_3x3"]}],
}
USAGE = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}
KEY = "sk-test-Zq8Xw2Lk5Vb9Nm3Rt7Yp1Hd4"


class FakeLangSmith:
    """A LangSmith API on 127.0.0.1: ``GET /info``, ``POST /runs/multipart`` and ``POST /runs/batch``.

    Runs are merged by id (posts then patches) into ``runs``; ``multipart=False`` answers 404 there, as
    older servers do, so clients fall back to ``/runs/batch``.
    """

    def __init__(self, multipart: bool = True):
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.rstrip("/").endswith("/info"):
                    self._send(200, {"version": "0.test"})  # clients use their default batching
                else:
                    self._send(404, {"detail": "not found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append(("POST", self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.endswith("/runs/multipart") and multipart:
                    head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
                    for part in message.iter_parts():
                        _, run_id, *field = str(part.get_param("name", header="content-disposition")).split(".")
                        data = json.loads(part.get_payload(decode=True))
                        run = server.runs.setdefault(run_id, {})
                        run.update({field[0]: data} if field else data)
                    self._send(202, {})
                elif self.path.endswith("/runs/batch"):
                    batch = json.loads(body)
                    for op in ("post", "patch"):
                        for run in batch.get(op, []):
                            server.runs.setdefault(str(run["id"]), {}).update(run)
                    self._send(202, {})
                else:
                    self._send(404, {"detail": "not found"})

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeLangSmith:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def scripted(body: dict) -> str:
    """The learner and adapter get a valid draft; the refiner's first answer names an unknown op."""
    name = body.get("response_format", {}).get("json_schema", {}).get("name", "")
    repairing = any("not valid" in str(m.get("content")) for m in body["messages"])
    if "Mask" in name:
        return json.dumps(MASK if repairing else {**MASK, "edge_0_1": ["conv_9x9"]})
    return json.dumps(DRAFT)


def runs_by_name(runs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["dotted_order"]):
        out.setdefault(r["name"], []).append(r)
    return out


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("traced") / "run"
    lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=12, seed=1, run_dir=run_dir)
    return run_dir


def test_offline_trace_is_one_tree_holding_every_evaluation_and_decision(offline_run: Path):
    lines = (offline_run / TRACE_FILE).read_text().splitlines()
    trace = read_trace(offline_run)
    assert trace.problems == [] and trace.unfinished == []
    assert len(lines) == len(trace.runs), "a finished trace holds exactly one line per run"
    assert tree_problems(trace.runs) == []
    roots = [r for r in trace.runs if r["parent_run_id"] is None]
    assert [r["name"] for r in roots] == ["lapt"]
    assert {r["trace_id"] for r in trace.runs} == {roots[0]["id"]}
    for r in trace.runs:
        assert r["run_type"] in ("chain", "llm", "tool", "parser", "prompt")
        assert r["start_time"] <= r["end_time"]
    by = runs_by_name(trace.runs)
    assert {"learn_principles", "refine_space", "search", "evaluate", "adapt", "finish"} <= by.keys()

    # Every evaluation is a tool run with its architecture, task and metrics, in order.
    trials = [json.loads(x) for x in (offline_run / "trials.jsonl").read_text().splitlines()]
    tools = by["evaluate_architecture"]
    assert all(r["run_type"] == "tool" for r in tools)
    assert [r["inputs"]["arch"] for r in tools] == [t["arch"] for t in trials]
    compact = [{k: v for k, v in t.items() if v not in (None, {}, [])} for t in trials]
    merged = [{**r["inputs"], "task": "cifar100", **r["outputs"]["output"]["trial"]} for r in tools]
    assert [{**m, "fitness": m.get("fitness", m["val"])} for m in merged] == [
        {**c, "cost_s": m["cost_s"]} for c, m in zip(compact, merged, strict=True)
    ]
    assert all("task" not in r["outputs"]["output"]["trial"] for r in tools)  # the root run's settings say it

    # Decisions are the outputs of the node runs that made them, equal to what the run directory recorded.
    nodes = sorted(
        (r for r in trace.runs if r["parent_run_id"] == roots[0]["id"] and r["run_type"] == "chain"),
        key=lambda r: r["dotted_order"],
    )
    principles = [p for r in nodes for p in r["outputs"].get("principles") or []]
    files = [json.loads(p.read_text()) for p in sorted((offline_run / "principles").iterdir())]
    # each set whole but for the evidence text of its principles, which its file holds
    assert principles == [
        {**f, "principles": [{k: v for k, v in p.items() if k != "evidence"} for p in f["principles"]]} for f in files
    ]
    masks = [r["outputs"]["mask"] for r in nodes if r["outputs"].get("mask")]
    assert masks == [json.loads(p.read_text()) for p in sorted((offline_run / "masks").iterdir())]
    assert all(m["mask"]["rationale"] for m in masks)
    decisions = [json.loads(x) for x in (offline_run / "decisions.jsonl").read_text().splitlines()]
    # ... each decision without the fields that say nothing (no error, no LLM call): the file has them all
    lean = [{k: v for k, v in d.items() if v not in (None, [], 0) or k in ("seq", "ok")} for d in decisions]
    assert [d for r in nodes for d in r["outputs"].get("decisions") or []] == lean
    adapter = [d for d in decisions if d["agent"] == "adapter"]
    assert [r["outputs"]["branch"] for r in by["adapt"]] == [d["branch"] for d in adapter]
    assert len(adapter) == 2  # 12 evaluations, adapting every 5
    assert not any(r["name"].startswith("decision:") for r in trace.runs)  # no second copy of a decision

    # Agent calls are runs of their own (offline reasoner: no LLM children) with the answer as output.
    assert len(by["agent:refiner"]) == len(masks) and by["agent:learner"][0]["outputs"]["ok"] is True
    # Node inputs carry the state's counters and versions, not the facts again (each trial is in its tool run).
    last = by["evaluate"][-1]["inputs"]
    assert last["n_trials"] == 11 and last["pending"] == [11] and last["principles"] == [0, 2] and "trials" not in last
    assert by["evaluate"][-1]["outputs"]["trials"] == [11]
    assert by["lapt"][0]["extra"]["metadata"]["settings"]["budget"] == 12
    assert "langgraph_triggers" not in by["evaluate"][-1]["extra"]["metadata"]  # bookkeeping stays on the root


def test_llm_calls_carry_messages_usage_and_repairs_and_no_key_anywhere(tmp_path: Path, monkeypatch):
    from lapt.agents.llm import LLMSettings

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    run_dir = tmp_path / "run"
    with FakeOpenAI(scripted, usage=(120, 30)) as server:
        llm = LLMSettings(model="fake", base_url=server.base_url, api_key=SecretStr(os.environ["OPENAI_API_KEY"]))
        result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=6, llm=llm, run_dir=run_dir)
    assert any(h.get("authorization") == f"Bearer {KEY}" for _, h, _ in server.requests)  # the key was used...
    for path in run_dir.rglob("*"):  # ...and is in no file of the run directory
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path

    trace = read_trace(run_dir)
    assert tree_problems(trace.runs) == []
    by = runs_by_name(trace.runs)
    llm_runs = [r for r in trace.runs if r["run_type"] == "llm"]
    assert len(llm_runs) == result.summary["usage"]["llm_calls"] == len(server.requests)
    for r in llm_runs:
        assert r["extra"]["metadata"]["usage_metadata"] == USAGE
        assert r["name"] == "json_schema_attempt_1"
        sent = r["inputs"]["messages"][0]
        assert sent[0]["id"][-1] == "SystemMessage" and sent[1]["kwargs"]["content"]
        generation = r["outputs"]["generations"][0][0]
        assert generation["message"]["kwargs"]["content"] and "text" not in generation  # the raw answer, once
        assert "api_key" not in json.dumps(r["extra"]["invocation_params"])
    parents = {r["id"]: r for r in trace.runs}
    assert {parents[r["parent_run_id"]]["name"] for r in llm_runs} == {"answer", "repair_1"}
    # The refiner's first answer failed validation: its round says why, and the repair round fixed it.
    first, repair = by["answer"][1], by["repair_1"][0]
    assert parents[first["parent_run_id"]]["name"] == "agent:refiner"
    assert first["outputs"]["valid"] is False and "edge_0_1" in first["outputs"]["problem"]
    assert repair["outputs"]["valid"] is True and repair["outputs"]["parsed"]["edge_0_3"] == ["skip_connect"]
    assert repair["parent_run_id"] == first["parent_run_id"]


def test_live_tracing_sends_the_same_runs_to_a_langsmith_endpoint(tmp_path: Path):
    from langsmith import utils as ls_utils

    key = "lsv2_pt_0123456789abcdef0123456789abcdef_0123456789"
    saved = {k: os.environ.get(k) for k in ("LANGSMITH_TRACING", "LANGSMITH_ENDPOINT", "LANGSMITH_API_KEY")}
    with FakeLangSmith() as server:
        os.environ.update({"LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": server.url, "LANGSMITH_API_KEY": key})
        try:
            lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=5, run_dir=tmp_path / "run")
        finally:  # never leave tracing on for the next test (and forget langsmith's cached view of the env)
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
            ls_utils.get_env_var.cache_clear()
    saved_runs = {r["id"]: r for r in read_trace(tmp_path / "run").runs}
    assert server.runs.keys() == saved_runs.keys()
    for run_id, run in saved_runs.items():
        got = server.runs[run_id]
        assert (str(got["trace_id"]), got["dotted_order"], got.get("parent_run_id")) == (
            run["trace_id"],
            run["dotted_order"],
            run["parent_run_id"],
        )
        assert got.get("end_time"), "every run arrived finished"
    assert all(h.get("x-api-key") == key for method, _, h in server.requests if method == "POST")
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path


def test_redactor_hides_known_values_and_anything_shaped_like_a_key():
    secret = 'my-local-server-key-"quoted"'
    r = Redactor([secret])
    text = json.dumps({"note": f"key {secret}", "x": "sk-proj-abcdefghijklmnop", "api_key": "whatever-it-is"})
    clean = r(text)
    assert secret not in json.loads(clean)["note"] and json.loads(clean)["api_key"] == "[redacted]"
    assert "sk-proj" not in clean and "Bearer lsv2_pt_abcdefghijk" not in r("Authorization: Bearer lsv2_pt_abcdefghijk")
    assert r('{"plain": "nothing to hide"}') == '{"plain": "nothing to hide"}'


def test_a_second_session_appends_its_own_tree_and_keeps_the_first(tmp_path: Path):
    """A resumed run traces into the same file: the earlier session's lines stay, but not a half-written one."""
    path = tmp_path / TRACE_FILE
    torn = b'{"id": "00000000-0000-0000-0000-0000000000ff", "na'
    dropped = []
    for n in range(2):
        client = TraceWriter(path)
        dropped.append(client.dropped_tail)
        root = f"00000000-0000-0000-0000-00000000000{n}"
        order = f"2025010{n + 1}T000000000000Z{root}"
        client.post({"id": root, "trace_id": root, "dotted_order": order, "name": "lapt", "run_type": "chain"})
        client.patch(root, {"end_time": "2025-01-01T00:00:01+00:00", "outputs": {"n": n}})
        client.finish()
        if n == 0:
            with open(path, "ab") as fh:  # the first session was killed while writing a line
                fh.write(torn)
    assert dropped == [0, len(torn)]
    assert torn not in path.read_bytes() and path.read_bytes().endswith(b"\n")
    trace = read_trace(path)
    assert trace.problems == []
    assert [r["outputs"] for r in trace.runs] == [{"n": 0}, {"n": 1}]
    assert tree_problems(trace.runs) == [] and Counter(r.get("parent_run_id") for r in trace.runs) == {None: 2}


def test_a_dead_live_tracing_endpoint_costs_a_warning_not_the_run(tmp_path: Path, capsys):
    from langsmith import utils as ls_utils

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # connection refused
    saved = {k: os.environ.get(k) for k in ("LANGSMITH_TRACING", "LANGSMITH_ENDPOINT")}
    os.environ.update({"LANGSMITH_TRACING": "true", "LANGSMITH_ENDPOINT": url})
    try:
        result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=3, run_dir=tmp_path / "run")
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        ls_utils.get_env_var.cache_clear()
    assert result.summary["evaluations"] == 3
    assert f"lapt: warning: live tracing to {url} failed" in capsys.readouterr().err
    assert tree_problems(read_trace(tmp_path / "run").runs) == []


def test_the_start_of_a_slow_evaluation_is_on_disk_before_it_ends(tmp_path: Path):
    """A kill during a long evaluation must not lose the record that it had started."""
    import time as _time

    path = tmp_path / TRACE_FILE
    writer = TraceWriter(path)

    def start(n: int) -> str:
        rid = f"00000000-0000-0000-0000-{n:012d}"
        writer.post({"id": rid, "trace_id": rid, "dotted_order": rid, "name": "evaluate_architecture",
                     "run_type": "tool"})  # fmt: skip
        return rid

    first = start(1)
    assert first in path.read_text()  # nothing is known about evaluations yet: written at once
    _time.sleep(0.06)  # longer than the flush interval: evaluations are slow here
    writer.patch(first, {"end_time": "2025-01-01T00:00:01+00:00", "outputs": {}})
    second = start(2)
    assert second in path.read_text()
    writer.finish()
