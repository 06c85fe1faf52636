"""End to end against a server whose answers are drawn at random from each request's schema."""

from __future__ import annotations

import json

import pytest
from schema_random import SchemaDraws, schema_random_server

import lapt
from lapt.agents.llm import LLMSettings
from lapt.schemas import principle_draft_model
from lapt.spaces import get_space
from lapt.transfer.masks import mask_model


def test_drawn_answers_satisfy_the_schema_they_were_drawn_from():
    from lapt.llm.schema import llm_json_schema

    space = get_space("nb201")
    for model in (principle_draft_model(space), mask_model(space, 2)):
        schema = llm_json_schema(model)
        draws = SchemaDraws(0)
        valid = 0
        for _ in range(30):
            data = draws.draw(schema, schema)
            assert set(data) <= set(schema["properties"])
            try:
                model.model_validate(data)
                valid += 1
            except ValueError:
                pass  # a region with no path through the cell: valid JSON, refused by the space
        assert valid > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_runs_against_random_answers_complete_and_record_every_drop(tmp_path, seed):
    with schema_random_server(seed) as fake:
        result = lapt.run(
            space="nb201", sources=["cifar10"], target="cifar100", budget=20, seed=0,
            llm=LLMSettings(model="fake", base_url=fake.url, timeout_s=5.0, backoff_max_s=0.01),
            run_dir=tmp_path / "run",
        )  # fmt: skip
    assert len(result.trials) == 20 and result.summary["ended"] == "budget"
    decisions = [json.loads(line) for line in (tmp_path / "run" / "decisions.jsonl").read_text().splitlines()]
    learner = decisions[0]
    assert learner["agent"] == "learner"
    assert learner["ok"] or (learner["fallback"]["ok"] and "offline miner" in result.degraded[0])
    principles = result.principles[0].principles
    for p in principles:  # nothing the judgement refuses went in
        assert not set(p.favour) & set(p.avoid)
    if learner["ok"]:
        assert learner["changes"], "random principles always break some rule; each drop has its line"
        assert all(": dropped" in c for c in learner["changes"])
    for m in result.masks:
        mask_model(get_space("nb201")).model_validate(m["mask"])
