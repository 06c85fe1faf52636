"""Whole runs with the LLM reasoner against the fake OpenAI server: the CLI as a user runs it, faults,
the leakage guarantee, and the response cache making a repeated run free.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_openai import CHAOS_FAULTS, FakeOpenAI

from lapt.agents import compact
from lapt.agents.llm import LLMSettings
from lapt.llm.cache import ResponseCache
from lapt.spaces import SearchSpace
from lapt.tables.builtin import load_table
from lapt.transfer.masks import full_mask, mask_model

RUN = ("run", "--space", "nb201", "--source", "cifar10", "--target", "cifar100", "--budget", "20", "--quiet")
# Every fault that a retry or a repair can absorb (no slow one: it would only cost wall time here).
FAULTS = tuple(f for f in CHAOS_FAULTS if f != "slow")


def lapt_run(url: str, run_dir: Path, *extra: str, key: str | None = None, wait: bool = True) -> Any:
    """``lapt run`` with the LLM at ``url``, as a user would type it (a subprocess); Popen if not ``wait``."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    if key is not None:
        env["OPENAI_API_KEY"] = key
    cmd = [sys.executable, "-m", "lapt.cli", *RUN, "--run-dir", str(run_dir), "--llm-base-url", url, *extra]
    if "--llm" not in extra:
        cmd += ["--llm", "openai:fake"]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def lapt_main(url: str, run_dir: Path, *extra: str) -> int:
    """The same command in this process (no interpreter start-up: these runs are about the graph)."""
    from lapt.cli import main

    return main([*RUN, "--run-dir", str(run_dir), "--llm", "openai:fake", "--llm-base-url", url, *extra])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_masks(space: SearchSpace, run_dir: Path, max_ops: int = 2) -> list[dict]:
    """Every mask version is valid, and every evaluated architecture lies inside the mask it was drawn in
    unless its trial says the search stepped outside it (and then it does lie outside).

    A mask from the refiner (or changed to an untried one after a stall) must satisfy the per-layer limit;
    a fallback (``full``, or ``kept`` after a fallback) may only be the full space.
    """
    full = full_mask(space).layer_choices()
    records = [json.loads(p.read_text()) for p in sorted((run_dir / "masks").glob("v*.json"))]
    assert [r["version"] for r in records] == list(range(len(records)))
    for r in records:
        mask = mask_model(space).model_validate(r["mask"])
        if r["source"] in ("refiner", "untried", "offline_refiner"):
            mask_model(space, max_ops).model_validate(r["mask"])
        else:
            assert r["source"] in ("full", "kept")
            limited = all(len(v) <= max_ops for v in mask.layer_choices().values())
            assert limited or mask.layer_choices() == full
    for trial in read_jsonl(run_dir / "trials.jsonl"):
        arch = space.describe_genotype(space.from_str(trial["arch"]))
        allowed = records[trial["mask_version"]]["mask"]
        inside = all(op in allowed[layer] for layer, op in arch.items())
        assert inside != trial.get("extras", {}).get("outside_region", False), (trial, allowed)
    return records


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a normal run ------------------------------------------------------------------------------------
def test_llm_run_completes_and_the_learner_sees_only_the_source(fake, nb201, tmp_path):
    out = lapt_run(fake.url, tmp_path / "run")
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    decisions = read_jsonl(run / "decisions.jsonl")
    # learner, refiner, then 3 x (adapter, refiner); a request repeated word for word is a cache hit
    assert [d["agent"] for d in decisions] == ["learner", "refiner"] + ["adapter", "refiner"] * 3
    assert all(d["ok"] for d in decisions)
    paid = len(fake.chat_requests())
    assert 2 <= paid <= 8 and f"LLM calls: {paid} " in out.stdout
    assert summary["evaluations"] == 20 and summary["usage"]["llm_calls"] == paid
    assert sum(d["llm_calls"] for d in decisions) == paid
    assert summary["usage"]["input_tokens"] == sum(d["input_tokens"] for d in decisions) > 0
    assert [r["source"] for r in check_masks(nb201, run)] == ["refiner"] * 4
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["llm"]["base_url"] == fake.url and "api_key" not in json.dumps(config)

    # Leakage: the learning request names only the source task and carries no target metric.
    learn = fake.chat_requests()[0]
    assert "principles" in learn.body["response_format"]["json_schema"]["schema"]["properties"]
    table = load_table("nb201")
    target, source = table.values("cifar100", "val"), table.values("cifar10", "val")
    top_target = np.argsort(-np.nan_to_num(target, nan=-np.inf))[:50]
    top_source = np.argsort(-np.nan_to_num(source, nan=-np.inf))[:50]
    assert "cifar100" not in learn.text
    assert all(f" {compact.value(source[i])}\n" in learn.text for i in top_source)  # the prompt's format...
    assert not any(compact.value(target[i]) in learn.text for i in top_target)  # ...and no target value in it
    assert decisions[0]["saw_tasks"] == ["cifar10"]
    # The adapter does see the target (that is its job), and says so.
    assert any("cifar100" in r.text for r in fake.chat_requests()[2:])
    # It reads the target evidence: per layer, ops best first with their hit rates on the target.
    adapts = [r for r in fake.chat_requests() if "What the target results say about each op" in r.text]
    assert adapts, "adapter prompts carry the target evidence"
    for r in adapts:
        section = r.text.split("What the target results say about each op")[1].split("## ")[0]
        assert all(f"\n{layer}: " in section for layer in nb201.layer_names)
        assert re.search(r"(nor3|skip|nor1) \d+%", section) and re.search(r" n\d+", section)
    # Every paid answer is in the run's own response cache (a resume would not pay for it again).
    assert len(ResponseCache(run / "llm_cache.sqlite")) == paid
    # Every decision says how its answer was read; a stalled search never gets a region it tried.
    assert all(d["extraction"] == "json" and d.get("failure") is None for d in decisions)
    masks = [json.loads(p.read_text())["mask"] for p in sorted((run / "masks").glob("v*.json"))]
    stalled = [i for i, d in enumerate(decisions) if d.get("branch") == "stalled"]
    for i in stalled:
        version = (i + 1) // 2  # the refiner decision right after this adapter wrote this mask version
        assert all(_region(masks[version]) != _region(m) for m in masks[:version])
    stalled_texts = [r.text for r in fake.chat_requests() if "stopped improving" in r.text]
    assert len(stalled_texts) == len(stalled) and all("Regions already tried" in t for t in stalled_texts)


def _region(mask: dict) -> dict:
    return {k: sorted(v) for k, v in mask.items() if k != "rationale"}


def test_reasoning_answers_and_a_first_timeout_still_give_a_refined_search(nb201, tmp_path):
    with FakeOpenAI(slow_s=1.5) as fake:
        # The learner's first attempt times out; the retry answers with a think block holding braces.
        fake.script("slow", "think_braces", "prose_braces_after")
        code = lapt_main(fake.url, tmp_path / "run", "--llm-timeout", "1", "--budget", "6")
        assert code == 0
    decisions = read_jsonl(tmp_path / "run" / "decisions.jsonl")
    learner, refiner = decisions[0], decisions[1]
    assert learner["ok"] and learner["extraction"] == "after_think" and "Timeout" in learner["attempts"][0]
    assert refiner["ok"] and refiner["extraction"] == "embedded" and refiner["source"] == "refiner"
    assert check_masks(nb201, tmp_path / "run")[0]["size"] < nb201.size()  # a refined space, not plain search


# -- configuration errors: one line, exit 2 ----------------------------------------------------------------
def test_config_errors_are_one_line_exit_2(fake, tmp_path):
    secret = "sk-lapt-test-0123456789abcdef"
    with FakeOpenAI(api_key="sk-the-right-one") as guarded:
        cases = {  # (url, extra options, API key, expected message); the three run side by side
            "unreachable": (f"http://127.0.0.1:{free_port()}/v1", (), None, "cannot reach the LLM endpoint"),
            "unauthorized": (guarded.url, (), secret, "rejected the API key (401)"),
            "unknown_model": (fake.url, ("--llm", "openai:gpt-nope"), None, "unknown model 'gpt-nope'"),
        }
        procs = {
            name: lapt_run(url, tmp_path / name, *extra, key=key, wait=False)
            for name, (url, extra, key, _) in cases.items()
        }
        results = {name: (*proc.communicate(timeout=120), proc.returncode) for name, proc in procs.items()}
    for name, (stdout, stderr, code) in results.items():
        needle = cases[name][3]
        assert code == 2, (name, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lapt: error: ") and needle in lines[0], (name, stderr)
        assert "Traceback" not in stderr and secret not in stderr + stdout


# -- faults everywhere: the run still completes, falls back, and says why ---------------------------------
def test_a_model_that_never_answers_is_replaced_by_the_offline_agents_and_the_run_says_so(nb201, tmp_path, capsys):
    """Every call fails: by default the miner's principles and the offline refiner's regions are used (exit 0)."""
    with FakeOpenAI(fault_rate=1.0, faults=FAULTS, seed=3, retry_after_s=0.05) as fake:
        code = lapt_main(fake.url, tmp_path / "run", "--llm-attempts", "2", "--llm-repairs", "1", "--llm-timeout", "2")
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("DEGRADED: the learner gave no usable principles"), last
    assert "the offline miner's principles were used" in last and "the offline refiner's region was searched" in last
    run = tmp_path / "run"
    assert json.loads((run / "summary.json").read_text())["evaluations"] == 20
    decisions = read_jsonl(run / "decisions.jsonl")
    assert decisions[0]["ok"] is False and decisions[0]["fallback"]["ok"] is True
    records = check_masks(nb201, run)
    assert {r["source"] for r in records} <= {"offline_refiner", "untried", "widened"}


def test_a_learner_without_an_answer_stops_the_run_loudly(tmp_path, capsys):
    """Every call fails and the user asked to stop: the run stops before any search (exit 3, one line)."""
    with FakeOpenAI(fault_rate=1.0, faults=FAULTS, seed=3, retry_after_s=0.05) as fake:
        code = lapt_main(
            fake.url, tmp_path / "run", "--llm-attempts", "2", "--llm-repairs", "1", "--llm-timeout", "2",
            "--on-agent-failure", "stop",
        )  # fmt: skip
        assert {r.behaviour for r in fake.chat_requests()} <= set(FAULTS)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lapt: ")]
    assert code == 3 and len(err) == 1 and err[0].startswith("lapt: stopped: the learner gave no principles"), err
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["evaluations"] == 0 and summary["ended"] == "agent_failed" and summary["degraded"]
    learner = read_jsonl(run / "decisions.jsonl")[0]
    assert learner["agent"] == "learner" and learner["ok"] is False and learner["error"] and learner["failure"]
    assert learner["attempts"]


def test_every_call_faulty_run_can_continue_in_the_full_space_and_says_it_is_degraded(nb201, tmp_path, capsys):
    with FakeOpenAI(fault_rate=1.0, faults=FAULTS, seed=3, retry_after_s=0.05) as fake:
        code = lapt_main(
            fake.url, tmp_path / "run", "--llm-attempts", "2", "--llm-repairs", "1", "--llm-timeout", "2",
            "--on-agent-failure", "continue",
        )  # fmt: skip
        assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("DEGRADED: the learner gave no principles (no transfer)"), last
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["evaluations"] == 20 and summary["degraded"]
    learner = read_jsonl(run / "decisions.jsonl")[0]
    assert learner["agent"] == "learner" and learner["ok"] is False and "no principles" in learner["note"]
    records = check_masks(nb201, run)
    assert records[0]["source"] == "full" and records[0]["size"] == 15625

def test_faults_after_learning_keep_the_previous_mask(nb201, tmp_path):
    with FakeOpenAI(fault_rate=1.0, faults=FAULTS, seed=5, retry_after_s=0.05) as fake:
        fake.script("valid")  # the learner gets its principles; every later call fails
        code = lapt_main(
            fake.url, tmp_path / "run", "--llm-attempts", "2", "--llm-repairs", "1", "--llm-timeout", "2",
            "--on-agent-failure", "stop",
        )  # fmt: skip
        assert code == 0
    run = tmp_path / "run"
    decisions = read_jsonl(run / "decisions.jsonl")
    assert decisions[0]["agent"] == "learner" and decisions[0]["ok"]
    refiners = [d for d in decisions if d["agent"] == "refiner"]
    adapters = [d for d in decisions if d["agent"] == "adapter"]
    assert refiners and all(not d["ok"] and d["error"] for d in refiners)
    assert refiners[0]["source"] == "full" and {d["source"] for d in refiners[1:]} == {"kept"}
    assert all("kept the previous one" in d["note"] for d in refiners[1:])
    assert adapters and all(not d["ok"] and d["note"].startswith("kept the current principles") for d in adapters)
    check_masks(nb201, run)


def test_chaos_run_completes_and_never_applies_an_invalid_mask(nb201, tmp_path):
    import lapt

    with FakeOpenAI(fault_rate=0.4, faults=FAULTS, seed=11, retry_after_s=0.05) as fake:
        fake.script("error_503", "unknown_ops", "truncated", "no_valid_arch")  # then 40 % faults at random
        llm = LLMSettings(model="fake", base_url=fake.url, timeout_s=2, backoff_max_s=0.01)
        result = lapt.run("nb201", ["cifar10"], "cifar100", 20, seed=1, llm=llm, run_dir=tmp_path / "run")
        behaviours = [r.behaviour for r in fake.chat_requests()]
    assert result.summary["evaluations"] == 20
    assert sum(b != "valid" for b in behaviours) >= 4
    check_masks(nb201, tmp_path / "run")


# -- the response cache ----------------------------------------------------------------------------------
def test_second_identical_run_makes_no_request(fake, tmp_path):
    import lapt

    llm = LLMSettings(model="fake", base_url=fake.url, timeout_s=2, backoff_max_s=0.01)
    cache = str(tmp_path / "llm_cache.sqlite")
    fake.script("unknown_ops")  # a repaired answer is replayed too
    first = lapt.run("nb201", ["cifar10"], "cifar100", 20, seed=2, llm=llm, llm_cache=cache)
    paid = len(fake.chat_requests())
    assert paid >= 3 and first.summary["usage"]["llm_calls"] == paid
    fake.reset_log()
    second = lapt.run("nb201", ["cifar10"], "cifar100", 20, seed=2, llm=llm, llm_cache=cache)
    assert fake.chat_requests() == []  # the server's log proves it: nothing was asked twice
    assert second.summary["usage"]["llm_calls"] == 0
    same = [(t.arch, t.val, t.round) for t in first.trials]
    assert [(t.arch, t.val, t.round) for t in second.trials] == same and second.masks == first.masks
    assert all(d["llm_calls"] == 0 for d in second.decisions if "llm_calls" in d)
