"""Answers judged part by part and checked against the data (real LLM client, fake server at the wire)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_openai import FakeOpenAI, wants_mask

import lapt
from lapt.agents.llm import LLMSettings
from lapt.agents.offline import OfflineReasoner
from lapt.agents.prompts import load_prompts
from lapt.agents.refiner import make_space_refiner
from lapt.graph.assembly import source_data
from lapt.principles.judging import judge_principles
from lapt.schemas import principle_draft_model
from lapt.spaces import get_space
from lapt.transfer.evidence import op_codes
from lapt.transfer.grounding import MIN_COVERAGE, SourceSupport, region_coverage
from lapt.transfer.masks import mask_model, to_spec


def p(statement="s", layer=None, favour=(), avoid=(), evidence=""):
    return {
        "statement": statement,
        "evidence": evidence,
        "confidence": 0.5,
        "layer": layer,
        "favour": list(favour),
        "avoid": list(avoid),
    }


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


@pytest.fixture(scope="module")
def support(nb201):
    return SourceSupport.of(nb201, [(s.archs, s.values) for s in source_data(nb201, ["cifar10"])], 50)


def settings(url: str, **kw) -> LLMSettings:
    return LLMSettings(model="fake", base_url=url, **({"timeout_s": 5.0, "backoff_max_s": 0.01} | kw))


def test_each_rule_costs_only_the_principle_or_op_that_breaks_it(nb201):
    draft = principle_draft_model(nb201)
    answer = draft.model_validate(
        {
            "principles": [
                p("Pool or not.", "edge_0_1", ["nor_conv_3x3", "avg_pool_3x3"], ["avg_pool_3x3"]),
                p("<one sentence>", "edge_0_2", ["nor_conv_3x3"], evidence="<numbers>"),
                p("Skip.", "edge_0_3", ["skip_connect"]),
                p("Skip again.", "edge_0_3", ["skip_connect"]),
                p("Only conflict.", "edge_1_2", ["none"], ["none"]),
                p("A general remark with no op."),
            ]
        }
    )
    verdict = judge_principles(nb201, answer, frozenset({"<one sentence>", "<numbers>"}))
    assert verdict.data is not None
    kept = verdict.data["principles"]
    assert [(k["statement"], k["favour"], k["avoid"]) for k in kept] == [
        ("Pool or not.", ["nor_conv_3x3"], []),
        ("Skip.", ["skip_connect"], []),
        ("A general remark with no op.", [], []),
    ]
    assert verdict.changes == [
        "principles.0 (edge_0_1): dropped avg_pool_3x3 from favour and avoid (an op cannot be both)",
        "principles.1 (edge_0_2): dropped, it copies the answer format's placeholder <numbers>",
        "principles.3 (edge_0_3): dropped, it repeats an earlier principle on the same layer and ops",
        "principles.4 (edge_1_2): dropped none from favour and avoid (an op cannot be both)",
        "principles.4 (edge_1_2): dropped, no op of it is left",
    ]
    nothing = judge_principles(nb201, draft.model_validate({"principles": [p("x", None, ["none"], ["none"])]}))
    assert nothing.data is None and nothing.problem.startswith("no principle is usable: principles.0")


def test_support_figures_are_the_tables_own(nb201, support):
    sources = source_data(nb201, ["cifar10"])
    archs, values = sources[0].archs, np.asarray(sources[0].values, dtype=float)
    codes = op_codes(nb201, archs)
    top = np.argsort(-values, kind="stable")[:50]
    li = nb201.layer_names.index("edge_0_3")
    k = nb201.layers[li].ops.index("avg_pool_3x3")
    s = support.op("avg_pool_3x3", "edge_0_3")
    assert s is not None and s.top == int((codes[top, li] == k).sum()) and s.slots == 50
    assert s.share == pytest.approx(float((codes[:, li] == k).mean()))
    assert s.text() == f"avg_pool_3x3 on edge_0_3: {s.top} of the 50 best, {100 * s.share:.0f} % of all"
    pooled = support.op("avg_pool_3x3", None)
    assert pooled is not None and pooled.slots == 300 and pooled.where == "every layer"
    # The case: a 1.5B model favoured avg_pool_3x3 on every layer; the data contradicts it.
    assert support.contradicts("avg_pool_3x3", None, favoured=True) is not None
    assert support.contradicts("nor_conv_3x3", None, favoured=True) is None
    assert support.contradicts("none", "edge_0_3", favoured=False) is None  # rare among the best: avoid it


def test_the_offline_refiners_first_regions_keep_enough_of_the_source_best():
    for space_name, src, tgt in [("nb201", "cifar10", "cifar100"), ("tnb101", "jigsaw", "class_scene")]:
        space = get_space(space_name)
        result = lapt.run(space=space_name, sources=[src], target=tgt, budget=1, seed=0, adapt=False)
        spec = to_spec(space, mask_model(space)(**result.masks[0]["mask"]))
        sup = SourceSupport.of(space, [(s.archs, s.values) for s in source_data(space, [src])], 50)
        assert region_coverage(space, spec, sup.best) >= MIN_COVERAGE, space_name


LEARNED = {
    "analysis": "Convolutions carry the signal.",
    "principles": [
        p("3x3 convolutions and pooling help everywhere.", None, ["nor_conv_3x3", "avg_pool_3x3"]),
        p("Keep a skip from input to output.", "edge_0_3", ["skip_connect"], ["none"]),
        p("Both ways.", "edge_1_2", ["nor_conv_1x1"], ["nor_conv_1x1"]),
    ],
}


def _run(fake: FakeOpenAI, tmp_path, budget=10, **kw):
    return lapt.run(
        space="nb201", sources=["cifar10"], target="cifar100", budget=budget, seed=0,
        llm=settings(fake.url), run_dir=tmp_path / "run", **kw,
    )  # fmt: skip


def test_a_contested_answer_is_quoted_back_once_then_kept_without_what_the_data_contradicts(tmp_path):
    def answer(body):
        return None if wants_mask(body) else LEARNED  # the repair repeats the answer word for word

    with FakeOpenAI(answer=answer) as fake:
        result = _run(fake, tmp_path, adapt=False)
        learn = [r for r in fake.chat_requests() if not wants_mask(r.body)]
    assert len(learn) == 2  # the answer, one repair quoting the figures; the same text again ends it
    repair = learn[1].messages[-1]["content"]
    assert "the data contradicts part of the answer" in repair
    assert "avg_pool_3x3 on every layer:" in repair and "of the 300 best" in repair
    learner = json.loads((tmp_path / "run" / "decisions.jsonl").read_text().splitlines()[0])
    assert learner["ok"] is True and learner["agent"] == "learner"
    assert any("dropped favour avg_pool_3x3" in c for c in learner["changes"])
    assert any("dropped nor_conv_1x1 from favour and avoid" in c for c in learner["changes"])
    assert any(s.startswith("principles.0: favour nor_conv_3x3 on every layer:") for s in learner["support"])
    kept = result.principles[0].principles
    assert [q.favour for q in kept] == [["nor_conv_3x3"], ["skip_connect"]]
    assert not result.degraded


def test_an_answer_of_placeholders_falls_back_to_the_miner_and_says_so(tmp_path):
    copied = {"analysis": "<two to four sentences>", "principles": [p("<one sentence>", "edge_2_3", ["none"])]}

    def answer(body):
        return None if wants_mask(body) else copied

    with FakeOpenAI(answer=answer) as fake:
        result = _run(fake, tmp_path, adapt=False)
        learn = [r for r in fake.chat_requests() if not wants_mask(r.body)]
    assert len(learn) == 2  # a repair answered with the same text ends the repairs at once
    assert "placeholder <one sentence>" in learn[1].messages[-1]["content"]
    assert result.principles[0].reasoner == "offline:enrichment-miner"
    assert "the offline miner's principles were used" in result.degraded[0]
    assert len(result.trials) == 10


def test_an_ungrounded_mask_is_sent_back_with_its_figures_then_replaced_by_the_offline_region(tmp_path, nb201):
    # A region of convolutions only: it excludes skip_connect on edge_0_3, which the best cells keep.
    ungrounded = {"rationale": "convolutions", **{e: ["nor_conv_1x1", "avg_pool_3x3"] for e in nb201.layer_names}}

    def answer(body):
        return ungrounded if wants_mask(body) else None

    with FakeOpenAI(answer=answer) as fake:
        result = _run(fake, tmp_path, adapt=False)
        refine = [r for r in fake.chat_requests() if wants_mask(r.body)]
    assert len(refine) == 2
    assert "the region keeps 0 of the 50 best source architectures (0 %; at least 5 % needed)" in (
        refine[1].messages[-1]["content"]
    )
    first = result.masks[0]
    assert first["source"] == "offline_refiner"
    offline = make_space_refiner(OfflineReasoner(), load_prompts())(nb201, result.principles[0], 2, "cifar100")
    assert offline.value is not None
    assert to_spec(nb201, mask_model(nb201)(**first["mask"])) == to_spec(nb201, offline.value)
    assert "the offline refiner's region was searched instead 1 time(s)" in result.degraded[0]
