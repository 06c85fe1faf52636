"""End to end through a real llama.cpp server running a real model (SmolLM2-135M-Instruct, see llama_server.py).

A 135M model writes weak answers: what these tests prove is that lapt copes with a real server and a
real weak model as a user would meet them. The server refuses ``json_schema`` (HTTP 500 naming
``response_format``) and lapt moves to JSON mode and remembers it; every agent is called; whatever the
model says is judged part by part and checked against the data; the run completes (exit 0, DEGRADED
where the offline agents stood in), and every mask searched is valid and grounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llama_server import MODEL_ALIAS, llama_server

from lapt.graph.assembly import source_data
from lapt.spaces import get_space
from lapt.transfer.grounding import source_best
from lapt.transfer.mask_judging import mask_problem
from lapt.transfer.masks import mask_model, to_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server_url():
    with llama_server() as url:
        yield url


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_real_model_on_a_real_llama_cpp_server_runs_to_the_end(server_url, tmp_path):
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    cmd = [
        sys.executable, "-m", "lapt.cli", "run", "--space", "nb201", "--source", "cifar10", "--target", "cifar100",
        "--budget", "8", "--adapt-every", "4", "--seed", "0", "--run-dir", str(run),
        "--llm", f"openai:{MODEL_ALIAS}", "--llm-base-url", server_url, "--llm-repairs", "1",
        "--llm-option", "max_tokens=400", "--llm-timeout", "300", "--llm-attempts", "2",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["evaluations"] == 8 and summary["usage"]["llm_calls"] > 0
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("DEGRADED: ") == bool(summary["degraded"]), last
    decisions = read_jsonl(run / "decisions.jsonl")
    agents = {d["agent"] for d in decisions if d.get("llm_calls") or d.get("attempts")}
    assert {"learner", "refiner", "adapter"} <= agents, agents
    # The server refused json_schema by meaning (a 500 naming response_format): JSON mode, remembered.
    learner = decisions[0]
    assert "unsupported by the server, trying json_mode" in learner["attempts"][0], learner["attempts"]
    later = [a for d in decisions[1:] for a in d.get("attempts") or [] if "attempt" in a]
    assert later and not any(a.startswith("json_schema") for a in later), later
    # Every mask valid; the first grounded in the source data (the model's own, or the offline region).
    space = get_space("nb201")
    masks = [json.loads(p.read_text()) for p in sorted((run / "masks").glob("v*.json"))]
    for m in masks:
        mask_model(space).model_validate(m["mask"])
    first = masks[0]
    best = source_best([(s.archs, s.values) for s in source_data(space, ["cifar10"])], 50)
    if first["source"] == "refiner":
        spec = to_spec(space, mask_model(space)(**first["mask"]))
        principles = json.loads((run / "principles" / "v0.json").read_text())["principles"]
        from lapt.schemas import Principle

        assert mask_problem(space, spec, [Principle(**p) for p in principles], best) is None
    else:
        assert first["source"] == "offline_refiner", first["source"]
