"""What the agents tell the model: stated layer order, compact encodings, space-specific formats, the
current region and new architectures on the improved branch, the regions tried on the stalled branch
(a different request each time, so never a cached replay), and checks that send back a region already
tried or an incomplete principle set. All through the real client and the fake server on 127.0.0.1.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_openai import PRINCIPLES as FAKE_PRINCIPLES
from fake_openai import FakeOpenAI

from lapt.agents import compact
from lapt.agents.adapter import AdaptInput, TargetRow, make_adapter
from lapt.agents.learner import SourceData, make_principle_learner
from lapt.agents.llm import LLMReasoner, LLMSettings
from lapt.agents.offline import OfflineReasoner
from lapt.agents.prompts import load_prompts
from lapt.agents.refiner import make_space_refiner
from lapt.llm.cache import ResponseCache
from lapt.schemas import Principle, PrincipleSet
from lapt.transfer.masks import from_spec, mask_model, to_spec

EDGES = ("edge_0_1", "edge_0_2", "edge_1_2", "edge_0_3", "edge_1_3", "edge_2_3")
LAYERED = PrincipleSet(
    version=1,
    source="learned",
    tasks_seen=["cifar10"],
    principles=[
        Principle(statement="Convolutions on edge_0_1.", layer="edge_0_1", favour=["nor_conv_3x3"], confidence=0.8),
        Principle(statement="A skip on edge_0_3.", layer="edge_0_3", favour=["skip_connect"], avoid=["none"]),
        Principle(statement="No pooling.", avoid=["avg_pool_3x3"], confidence=0.6),
    ],
)
# A complete answer to LAYERED: a principle for each layer it covers.
COMPLETE = {
    "analysis": "kept",
    "principles": [
        {"statement": "s", "evidence": "", "confidence": 0.7, "layer": layer, "favour": ["nor_conv_3x3"], "avoid": []}
        for layer in ("edge_0_1", "edge_0_3")
    ],
}
REGION_A = {"rationale": "a", **{e: ["nor_conv_3x3", "nor_conv_1x1"] for e in EDGES}}
REGION_B = {**REGION_A, "rationale": "b", "edge_0_3": ["skip_connect"]}


@pytest.fixture(scope="module")
def prompts():
    return load_prompts()


def settings(url: str) -> LLMSettings:
    return LLMSettings(model="fake", base_url=url, timeout_s=2.0, backoff_max_s=0.01)


def user_text(request) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "user")


def rows(space, n: int, new_from: int) -> list[TargetRow]:
    archs = list(space.enumerate(to_spec(space, mask_model(space)(**REGION_A))))[:n]
    return [TargetRow(space.describe_genotype(g), 70.0 - i, i >= new_from) for i, g in enumerate(archs)]


def adapt_input(space, branch: str, tried=(), top=None) -> AdaptInput:
    return AdaptInput(
        branch=branch,
        space=space,
        original=LAYERED,
        current=LAYERED,
        target_task="cifar100",
        current_mask=REGION_B,
        top_target=top if top is not None else rows(space, 5, 3),
        tried_regions=list(tried),
    )


def test_learner_states_the_layer_order_and_encodes_architectures_in_it(prompts, nb201):
    with FakeOpenAI() as fake:
        values = np.linspace(0.0, 1.0, nb201.size())
        archs = list(nb201.enumerate())
        make_principle_learner(LLMReasoner(settings(fake.url)), prompts, top_k=3)(
            nb201, [SourceData("cifar10", archs, values)]
        )
        text = user_text(fake.chat_requests()[0])
    assert "in the order edge_0_1 edge_0_2 edge_1_2 edge_0_3 edge_1_3 edge_2_3" in text
    assert "nor3=nor_conv_3x3" in text and "avg3=avg_pool_3x3" in text
    best = nb201.describe_genotype(archs[-1])  # the highest value
    assert f"{compact.architecture(nb201, best)} 1\n" in text
    assert "``" not in text.replace("```", "")  # no developer notation outside the code block


def test_refiner_rules_do_not_contradict_and_darts_prompts_use_darts_names(prompts, darts):
    with FakeOpenAI() as fake:
        principles = PrincipleSet(version=0, source="t", principles=[Principle(statement="Separable convs help.")])
        outcome = make_space_refiner(LLMReasoner(settings(fake.url)), prompts)(darts, principles, 2, "cifar10")
        assert outcome.value is not None, outcome.reply.error
        text = user_text(fake.chat_requests()[0])
    assert "Keep 1 to 2 ops per layer" in text and "drop an op only when" not in text
    assert "edge_0_3" not in text and '"normal_node_2": {"ops"' in text and "reduce_node_5" in text
    assert "at least 2 allowed input states" in text


def test_improved_branch_shows_the_region_and_marks_new_architectures(prompts, nb201):
    with FakeOpenAI(answer=lambda body: COMPLETE) as fake:
        adapt = make_adapter(LLMReasoner(settings(fake.url)), prompts)
        assert adapt(adapt_input(nb201, "improved")).value is not None
        text = user_text(fake.chat_requests()[0])
    assert compact.region(nb201, REGION_B) in text  # the region every architecture was drawn from
    lines = [line for line in text.splitlines() if line.endswith((" 70", " 69", " 68", " 67", " 66"))]
    assert [line.startswith("*") for line in lines] == [False, False, False, True, True]
    assert "COMPLETE updated set" in text


def test_stalled_branch_lists_regions_tried_and_each_list_is_a_new_request(prompts, nb201, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    with FakeOpenAI(answer=lambda body: COMPLETE) as fake:
        adapt = make_adapter(LLMReasoner(settings(fake.url), cache=cache), prompts)
        first = adapt(adapt_input(nb201, "stalled", tried=[REGION_A]))
        again = adapt(adapt_input(nb201, "stalled", tried=[REGION_A]))  # the same request: a replay
        later = adapt(adapt_input(nb201, "stalled", tried=[REGION_A, REGION_A]))
        texts = [user_text(r) for r in fake.chat_requests()]
    assert (first.reply.calls, again.reply.cached_calls, later.reply.calls) == (1, 1, 1)
    assert len(texts) == 2
    assert f"1. {compact.region(nb201, REGION_A)}\n2. {compact.region(nb201, REGION_B)}" in texts[0]
    assert f"3. {compact.region(nb201, REGION_B)}" in texts[1]


def test_refiner_refuses_a_region_already_tried(prompts, nb201):
    tried = mask_model(nb201, 2)(**REGION_A)

    def answer(body):  # the first answer re-proposes the tried region; the repair a fresh one
        return REGION_A if len(body["messages"]) == 2 else REGION_B

    with FakeOpenAI(answer=answer) as fake:
        refine = make_space_refiner(LLMReasoner(settings(fake.url)), prompts)
        outcome = refine(nb201, LAYERED, 2, "cifar100", "stalled", avoid_regions=[REGION_A])
        first, repair = fake.chat_requests()
    assert "Regions already tried (propose none of them again)" in user_text(first)
    assert "this region was already tried" in repair.messages[-1]["content"]
    assert outcome.value is not None and to_spec(nb201, outcome.value) != to_spec(nb201, tried)


def test_offline_refiner_moves_off_a_tried_region(prompts, nb201):
    refine = make_space_refiner(OfflineReasoner(), prompts)
    plain = refine(nb201, LAYERED, 2, "cifar100")
    region = from_spec(nb201, to_spec(nb201, plain.value)).model_dump()
    moved = refine(nb201, LAYERED, 2, "cifar100", "stalled", avoid_regions=[region])
    assert moved.value is not None and to_spec(nb201, moved.value) != to_spec(nb201, plain.value)
    assert "already tried" in moved.value.rationale


def test_adapter_answer_must_be_a_complete_set(prompts, nb201):
    def answer(body):  # first an answer without layer principles, then the complete set
        return FAKE_PRINCIPLES if len(body["messages"]) == 2 else COMPLETE

    with FakeOpenAI(answer=answer) as fake:
        outcome = make_adapter(LLMReasoner(settings(fake.url)), prompts)(adapt_input(nb201, "improved"))
        repair = fake.chat_requests()[1]
    told = repair.messages[-1]["content"]
    assert "must be the complete set" in told and "edge_0_1, edge_0_3" in told
    assert outcome.value is not None and {p.layer for p in outcome.value.principles} == {"edge_0_1", "edge_0_3"}
    assert outcome.value.version == 2 and outcome.value.tasks_seen == ["cifar10", "cifar100"]
