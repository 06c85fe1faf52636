"""Answer schemas per space: names as enums, OpenAI strict-mode rules for every space, no developer notes.

What a model is sent is :func:`lapt.llm.schema.llm_json_schema` of the per-space mask and principle
models; :func:`lapt.llm.schema.strict_problems` checks it against OpenAI's strict structured-output rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_openai import FakeOpenAI
from pydantic import ValidationError

from lapt.agents.learner import SourceData, make_principle_learner
from lapt.agents.llm import LLMReasoner, LLMSettings
from lapt.agents.prompts import load_prompts
from lapt.llm.schema import llm_json_schema, strict_problems
from lapt.principles.judging import judge_principles
from lapt.schemas import PrincipleDraft, PrincipleSet, draft_principles, principle_draft_model
from lapt.spaces import get_space
from lapt.transfer.masks import mask_model

TOY = Path(__file__).resolve().parents[1] / "examples" / "toy_space" / "toy_space.toml"
MIXED = """
name = "mixed"
title = "Mixed cell (3 edges, different ops per edge)"
kind = "cell"
[ops]
none = { description = "outputs zeros", module = "Zero()" }
skip_connect = { description = "identity", module = "Identity()" }
conv_3x3 = { description = "3x3 conv", module = "ReLUConvBN(C, C, kernel=3)" }
pool_3x3 = { description = "3x3 average pool", module = "AvgPool2d(3, 1, 1)" }
[[layers]]
edge = "0->1"
ops = ["skip_connect", "conv_3x3"]
[[layers]]
edge = "0->2"
ops = ["none", "conv_3x3", "pool_3x3"]
[[layers]]
edge = "1->2"
ops = ["none", "skip_connect", "conv_3x3"]
[arch]
format = "ops_joined"
separator = "-"
"""
# Words that would only make sense to a developer reading the schema.
DEVELOPER_WORDS = ("``", "LLM", "offline", "reasoner", "Pydantic", "schema given", "mask class")


def spaces() -> list[str]:
    return ["nb201", "tnb101", "darts", str(TOY)]


def descriptions(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [str(node["description"])] if isinstance(node.get("description"), str) else []
        return found + [d for v in node.values() for d in descriptions(v)]
    if isinstance(node, list):
        return [d for v in node for d in descriptions(v)]
    return []


@pytest.mark.parametrize("name", spaces())
@pytest.mark.parametrize("max_ops", [1, 2, 3, None])
def test_every_mask_schema_meets_strict_mode(name, max_ops):
    schema = llm_json_schema(mask_model(get_space(name), max_ops))
    assert strict_problems(schema) == []
    assert not any(word in d for d in descriptions(schema) for word in DEVELOPER_WORDS)


@pytest.mark.parametrize("name", spaces())
def test_every_principle_schema_meets_strict_mode_and_names_the_space(name):
    space = get_space(name)
    schema = llm_json_schema(principle_draft_model(space))
    assert strict_problems(schema) == []
    assert not any(word in d for d in descriptions(schema) for word in DEVELOPER_WORDS)
    text = json.dumps(schema)
    assert all(f'"{layer}"' in text for layer in space.layer_names)
    assert all(f'"{op}"' in text for op in space.ops)
    assert ("edge_0_3" in text) == ("edge_0_3" in space.layer_names)  # no NB201 names on DARTS


def test_the_checker_finds_what_strict_mode_refuses():
    problems = strict_problems(PrincipleDraft.model_json_schema())  # pydantic's own form of the old schema
    assert any("properties not required: analysis" in p for p in problems)
    assert any("keyword default is not allowed" in p for p in problems)
    assert any("keyword minLength is not allowed" in p for p in problems)
    darts_default = mask_model(get_space("darts"), 2).model_json_schema()
    darts_default["properties"]["normal_node_2"] = {"$ref": "#/$defs/darts_normal_node_2", "description": "x"}
    assert any("$ref with sibling keyword(s) description" in p for p in strict_problems(darts_default))
    assert strict_problems({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}) == [
        "(root): additionalProperties must be false"
    ]
    assert strict_problems({"anyOf": [{"type": "object"}]})[0].startswith("(root): the root must be an object")


def test_answers_with_free_strings_or_foreign_ops_are_refused():
    nb201_draft = principle_draft_model(get_space("nb201"))
    base = {"statement": "s", "evidence": "", "confidence": 0.5, "favour": [], "avoid": []}
    with pytest.raises(ValidationError, match="edge_0_1"):
        nb201_draft.model_validate({"analysis": "", "principles": [{**base, "layer": "all edges"}]})
    with pytest.raises(ValidationError, match="nor_conv_3x3"):
        nb201_draft.model_validate({"analysis": "", "principles": [{**base, "layer": None, "favour": ["3x3 conv"]}]})
    darts_draft = principle_draft_model(get_space("darts"))
    with pytest.raises(ValidationError, match="normal_node_2"):
        darts_draft.model_validate({"analysis": "", "principles": [{**base, "layer": "edge_0_3"}]})


def test_a_layer_principle_may_only_name_that_layers_ops(tmp_path):
    path = tmp_path / "mixed.toml"
    path.write_text(MIXED)
    space = get_space(str(path))
    draft = principle_draft_model(space)
    base = {"statement": "s", "evidence": "", "confidence": 0.5, "avoid": []}
    first = space.layer_names[0]
    foreign = draft.model_validate({"analysis": "", "principles": [{**base, "layer": first, "favour": ["pool_3x3"]}]})
    verdict = judge_principles(space, foreign)  # the schema takes it; the principle's own judgement drops it
    assert verdict.data is None and verdict.changes == [
        f"principles.0 ({first}): dropped pool_3x3 ({first} has no such op)",
        f"principles.0 ({first}): dropped, no op of it is left",
    ]
    ok = draft.model_validate({"analysis": "", "principles": [{**base, "layer": None, "favour": ["pool_3x3"]}]})
    assert draft_principles(ok)[1][0].favour == ["pool_3x3"]


def test_validation_accepts_what_non_strict_servers_omit_and_stores_space_independent_sets():
    draft = principle_draft_model(get_space("nb201"))
    value = draft.model_validate({"principles": [{"statement": "Keep a skip on edge_0_3.", "layer": "edge_0_3"}]})
    analysis, principles = draft_principles(value)
    pset = PrincipleSet(version=0, source="t", principles=principles, analysis=analysis)
    restored = PrincipleSet.model_validate_json(pset.model_dump_json())
    assert restored.principles[0].layer == "edge_0_3" and restored.principles[0].confidence == 0.5
    assert type(restored.principles[0]).__name__ == "Principle"


def test_the_schema_sent_is_the_schema_validated(nb201):
    with FakeOpenAI() as fake:
        reasoner = LLMReasoner(LLMSettings(model="fake", base_url=fake.url, timeout_s=2))
        values = np.linspace(0.0, 1.0, nb201.size())
        make_principle_learner(reasoner, load_prompts(), top_k=5)(
            nb201, [SourceData("cifar10", list(nb201.enumerate()), values)]
        )
        fmt = fake.chat_requests()[0].body["response_format"]
    assert fmt["json_schema"]["schema"] == llm_json_schema(principle_draft_model(nb201))
    assert fmt["json_schema"]["name"] == "Nb201Principles" and fmt["json_schema"]["strict"] is True
