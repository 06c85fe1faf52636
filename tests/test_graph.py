"""The LAPT graph end to end with the offline reasoner: routing, branches, budget, fallbacks, leakage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lapt
from lapt.agents.offline import OfflineReasoner
from lapt.agents.reasoner import AgentReply, AgentRequest
from lapt.errors import AgentFailure, UserError
from lapt.transfer.masks import mask_model


class RecordingReasoner:
    """The offline miner, keeping every request it answers (a real reasoner, not a network fake)."""

    name = "recording"
    model = "offline"

    def __init__(self, fail: set[str] | None = None):
        self.inner = OfflineReasoner()
        self.requests: list[AgentRequest] = []
        self.fail = fail or set()

    def complete(self, request: AgentRequest) -> AgentReply:
        self.requests.append(request)
        if request.kind in self.fail:
            return AgentReply(value=None, error=f"{request.kind} refused on purpose")
        return self.inner.complete(request)


@pytest.fixture
def recording():
    return RecordingReasoner()


def test_adapts_every_n_and_stops_at_budget(recording):
    result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=23, seed=3, reasoner=recording)
    assert len(result.trials) == 23 and result.summary["ended"] == "budget"
    adapts = [d for d in result.decisions if d["agent"] == "adapter"]
    assert len(adapts) == 4  # after evaluations 5, 10, 15, 20
    kinds = [r.kind for r in recording.requests]
    assert kinds[0] == "learn" and kinds[1] == "refine"
    assert kinds.count("refine") == 1 + len(adapts)
    assert {d["branch"] for d in adapts} <= {"improved", "stalled"}
    # a mask version per refinement, all valid under the per-layer limit
    assert len(result.masks) == 5
    for m in result.masks:
        mask_model(lapt.spaces.get_space("nb201"), 2)(**m["mask"])


def test_both_adaptation_branches_run():
    seen = set()
    for seed in range(6):
        result = lapt.run(space="nb201", sources=["cifar10"], target="ImageNet16-120", budget=30, seed=seed)
        seen |= {d["branch"] for d in result.decisions if d["agent"] == "adapter"}
    assert seen == {"improved", "stalled"}


def test_no_adapt_means_transfer_only(recording):
    result = lapt.run(
        space="nb201", sources=["cifar10"], target="cifar100", budget=12, seed=0, adapt=False, reasoner=recording
    )
    assert [r.kind for r in recording.requests] == ["learn", "refine"]
    assert len(result.masks) == 1


def test_learner_sees_only_source_data(recording):
    from lapt.tables.builtin import load_table

    result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=5, seed=0, reasoner=recording)
    learn = [r for r in recording.requests if r.kind == "learn"]
    assert len(learn) == 1
    text = learn[0].user + json.dumps(learn[0].payload)
    assert "cifar100" not in text
    table = load_table("nb201")
    for _, v in table.top("cifar100", 50):
        assert repr(v) not in text and f"{v:.4f}" not in learn[0].user
    learner = next(d for d in result.decisions if d["agent"] == "learner")
    assert learner["saw_tasks"] == ["cifar10"]


def test_a_learner_without_principles_stops_the_run_before_any_search():
    rec = RecordingReasoner(fail={"learn"})
    with pytest.raises(AgentFailure, match="learner gave no principles") as stopped:
        lapt.run(
            space="nb201", sources=["cifar10"], target="cifar100", budget=8, seed=0, reasoner=rec,
            on_agent_failure="stop",
        )  # fmt: skip
    result = stopped.value.result
    assert result.trials == [] and result.masks == [] and [r.kind for r in rec.requests] == ["learn"]
    assert result.summary["ended"] == "agent_failed" and result.summary["degraded"]


def test_failing_agents_fall_back_and_the_run_says_it_is_degraded():
    rec = RecordingReasoner(fail={"learn"})
    result = lapt.run(
        space="nb201", sources=["cifar10"], target="cifar100", budget=8, seed=0, reasoner=rec,
        on_agent_failure="continue",
    )  # fmt: skip
    assert len(result.trials) == 8
    assert result.masks[0]["source"] == "full" and result.masks[0]["size"] == 15_625
    assert result.degraded and "learner gave no principles" in result.degraded[0]
    rec2 = RecordingReasoner(fail={"refine"})
    result = lapt.run(
        space="nb201", sources=["cifar10"], target="cifar100", budget=12, seed=0, reasoner=rec2,
        on_agent_failure="stop",
    )  # fmt: skip
    assert [m["source"] for m in result.masks] == ["full", "kept", "kept"]
    assert all("refine refused on purpose" in d["note"] for d in result.decisions if d["agent"] == "refiner")
    assert result.summary["agent_failures"] == {"refiner": 3} and "3 refinement(s)" in result.degraded[0]
    rec3 = RecordingReasoner(fail={"adapt_improved", "adapt_stalled"})
    result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=12, seed=0, reasoner=rec3)
    assert result.summary["adaptations"] == 2 and result.summary["adaptations_failed"] == 2
    assert sum(r.kind.startswith("adapt") for r in rec3.requests) == 2  # asked again at the next adaptation


def test_by_default_the_offline_miner_and_refiner_stand_in_for_a_failing_model():
    rec = RecordingReasoner(fail={"learn", "refine"})
    result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=12, seed=0, reasoner=rec)
    assert len(result.trials) == 12 and result.summary["ended"] == "budget"
    learner = next(d for d in result.decisions if d["agent"] == "learner")
    assert learner["ok"] is False and learner["fallback"] == {"by": "offline miner", "ok": True, "error": None}
    assert result.principles[0].reasoner == "offline:enrichment-miner"
    assert [m["source"] for m in result.masks] == ["offline_refiner"] * 3
    offline = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=12, seed=0)
    assert result.masks[0]["mask"] == offline.masks[0]["mask"]  # the same region the offline run searches
    assert "the offline miner's principles were used" in result.degraded[0]
    assert "the offline refiner's region was searched instead 3 time(s)" in result.degraded[1]


def test_exhausted_region_widens_to_the_full_space():
    result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=50, seed=0, max_ops=1, adapt=False)
    assert result.summary["ended"] == "budget" and len(result.trials) == 50
    first, last = result.masks[0], result.masks[-1]
    assert first["size"] == 1 and last["source"] == "widened" and last["size"] == 15_625
    assert len({t.arch for t in result.trials}) == 50


def test_same_task_refused_unless_allowed():
    with pytest.raises(UserError, match="allow-same-task"):
        lapt.run(space="nb201", sources=["cifar10"], target="cifar10", budget=3)
    assert (
        len(lapt.run(space="nb201", sources=["cifar10"], target="cifar10", budget=3, allow_same_task=True).trials) == 3
    )


def test_tnb101_defaults_follow_the_paper():
    result = lapt.run(space="tnb101", sources=["jigsaw"], target="class_scene", budget=25, seed=1)
    s = result.settings
    assert (s.population, s.tournament, s.adapt_every, s.max_ops, s.top_target) == (10, 5, 10, 3, 15)
    assert sum(d["agent"] == "adapter" for d in result.decisions) == 2


def test_multi_source_learning_labels_tasks(recording):
    lapt.run(
        space="tnb101", sources=["jigsaw", "autoencoder"], target="class_scene", budget=3, seed=0, reasoner=recording
    )
    learn = next(r for r in recording.requests if r.kind == "learn")
    assert "[jigsaw]" in learn.user and "[autoencoder]" in learn.user
    assert set(learn.payload["sources"]) == {"jigsaw", "autoencoder"}


def test_prompt_override(tmp_path: Path, recording):
    (tmp_path / "learner.md").write_text("Principles for ${source_tasks}, please.\n${layer_statistics}\n")
    result = lapt.run(
        space="nb201", sources=["cifar10"], target="cifar100", budget=3, prompts_dir=str(tmp_path), reasoner=recording
    )
    assert recording.requests[0].user.startswith("Principles for cifar10, please.")
    from lapt.agents.prompts import load_prompts

    assert result.prompt_hashes["learner.md"] != load_prompts().hashes["learner.md"]
    (tmp_path / "learner.md").write_text("Leak ${target_task} please")
    with pytest.raises(UserError, match="unknown variable"):
        lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=3, prompts_dir=str(tmp_path))
    (tmp_path / "learner.md").unlink()
    (tmp_path / "planner.md").write_text("hello")
    with pytest.raises(UserError, match="matches no prompt"):
        lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=3, prompts_dir=str(tmp_path))


def test_recursion_limit_covers_the_budget():
    # A long run with frequent adaptations must not hit LangGraph's recursion limit.
    result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=120, seed=0, adapt_every=1)
    assert len(result.trials) == 120
