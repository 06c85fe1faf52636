"""Answers as models write them, read through the real client from the fake server on 127.0.0.1.

Every answer style of ``tests/fake_openai.py`` is sent to a real agent (the learner or the refiner with
the shipped prompts) through ``LLMReasoner``; the JSON that validates is taken, and the reply says where
it was found. Answers that hold no valid JSON are sent back with the validation error quoted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_openai import ANSWER_STYLES, FakeOpenAI

from lapt.agents.learner import SourceData, make_principle_learner
from lapt.agents.llm import LLMReasoner, LLMSettings
from lapt.agents.llm_answers import candidates, split_reasoning
from lapt.agents.prompts import load_prompts
from lapt.agents.refiner import make_space_refiner
from lapt.llm.cache import ResponseCache
from lapt.schemas import Principle, PrincipleSet
from lapt.transfer.masks import MaskBase

PRINCIPLES = PrincipleSet(
    version=0,
    source="test",
    tasks_seen=["cifar10"],
    principles=[Principle(statement="Convolutions help on every edge.", confidence=0.8)],
)
# Where each style's JSON is found.
EXPECTED = {
    "valid_fenced": "fenced",
    "fence_plain": "fenced",
    "think_braces": "after_think",
    "thinking_tag": "embedded",
    "orphan_think": "after_think",
    "reasoning_content": "json",
    "reasoning_only": "reasoning_content",
    "prose_braces_after": "embedded",
    "prose_braces_before": "embedded",
    "wrapped": "unwrapped",
}


@pytest.fixture(scope="module")
def prompts():
    return load_prompts()


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def settings(url: str, **kw) -> LLMSettings:
    return LLMSettings(model="fake", base_url=url, **({"timeout_s": 2.0, "backoff_max_s": 0.01} | kw))


def learn(reasoner, prompts, nb201):
    values = np.linspace(0.0, 1.0, nb201.size())
    return make_principle_learner(reasoner, prompts, top_k=5)(
        nb201, [SourceData("cifar10", list(nb201.enumerate()), values)]
    )


def test_every_style_has_an_expected_extraction():
    assert set(EXPECTED) == set(ANSWER_STYLES)


@pytest.mark.parametrize("style", ANSWER_STYLES)
def test_learner_reads_every_answer_style(fake, prompts, nb201, style):
    fake.script(style)
    outcome = learn(LLMReasoner(settings(fake.url)), prompts, nb201)
    assert outcome.value is not None, outcome.reply.error
    assert outcome.reply.calls == 1  # no repair round was needed
    assert outcome.reply.extraction == EXPECTED[style] and outcome.reply.method == "json_schema"
    assert outcome.value.principles[0].statement.startswith("Convolutions on the edges")


@pytest.mark.parametrize("style", ["think_braces", "prose_braces_after", "reasoning_only"])
def test_refiner_reads_styles_in_json_mode_too(prompts, nb201, style):
    with FakeOpenAI(mode="json_mode_only") as fake:
        fake.script(style)
        outcome = make_space_refiner(LLMReasoner(settings(fake.url)), prompts)(nb201, PRINCIPLES, 2, "cifar100")
        assert isinstance(outcome.value, MaskBase), outcome.reply.error
        assert outcome.reply.method == "json_mode" and outcome.reply.extraction == EXPECTED[style]
        # JSON mode cannot carry the schema: it is written into the prompt instead.
        sent = fake.chat_requests()[-1]
        assert "follows this JSON schema:" in sent.text and '"edge_2_3"' in sent.text


def test_cached_reasoning_answer_is_read_again_the_same_way(fake, prompts, nb201, tmp_path):
    fake.script("reasoning_only")
    first = learn(LLMReasoner(settings(fake.url), cache=ResponseCache(tmp_path / "c.sqlite")), prompts, nb201)
    fake.reset_log()
    again = learn(LLMReasoner(settings(fake.url), cache=ResponseCache(tmp_path / "c.sqlite")), prompts, nb201)
    assert fake.chat_requests() == [] and again.reply.cached_calls == 1
    assert again.value == first.value and again.reply.extraction == "reasoning_content"


def test_free_strings_are_refused_and_the_error_names_the_allowed_names(fake, prompts, nb201):
    fake.script("free_strings", "valid")
    outcome = learn(LLMReasoner(settings(fake.url)), prompts, nb201)
    assert outcome.value is not None and outcome.reply.calls == 2
    repair = fake.chat_requests()[1]
    told = repair.messages[-1]["content"]
    assert told.startswith("Your answer is not valid:")
    assert "principles.0.layer" in told and "'edge_0_1'" in told and '(got "all edges")' in told
    assert "principles.0.favour.0" in told and "'nor_conv_3x3'" in told and '(got "3x3 conv")' in told
    # The model's own answer is shown back before the error, without its reasoning.
    assert repair.messages[-2]["role"] == "assistant" and "all edges" in repair.messages[-2]["content"]


def test_repair_shows_the_answer_without_its_think_block(fake, prompts, nb201):
    fake.script("prose", "think_braces")
    outcome = learn(LLMReasoner(settings(fake.url)), prompts, nb201)
    assert outcome.value is not None and outcome.reply.extraction == "after_think"
    assert "not JSON" in fake.chat_requests()[1].messages[-1]["content"]


def test_no_valid_candidate_reports_the_closest_one():
    text = 'Plan: {"a": 1}. Answer: {"analysis": "x", "principles": [{"statement": "s", "layer": "nope"}]}'
    found = candidates(text)
    assert [c.how for c in found] == ["embedded", "embedded"]
    assert found[1].data["principles"][0]["layer"] == "nope"


def test_split_reasoning_handles_every_tag_form():
    assert split_reasoning("<think>{x}</think>{}") == ("{}", ["{x}"])
    assert split_reasoning("<THINKING>a</THINKING> b") == ("b", ["a"])
    assert split_reasoning("a {b}</think>\n{}") == ("{}", ["a {b}"])
    assert split_reasoning("{} <think>cut off") == ("{}", ["cut off"])
    assert json.loads(split_reasoning('<reasoning>r</reasoning>{"k": 1}')[0]) == {"k": 1}
