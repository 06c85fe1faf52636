"""The graph's search around the refined region: steps outside it, target evidence, untried stalled regions."""

from __future__ import annotations

import pytest

import lapt
from lapt.agents.offline import OfflineReasoner
from lapt.agents.reasoner import AgentReply, AgentRequest
from lapt.spaces import get_space
from lapt.transfer.masks import mask_model, to_spec

TNB = get_space("tnb101")


class RecordingReasoner:
    """The offline miner, keeping every request it answers."""

    name = "recording"
    model = "offline"

    def __init__(self) -> None:
        self.inner = OfflineReasoner()
        self.requests: list[AgentRequest] = []

    def complete(self, request: AgentRequest) -> AgentReply:
        self.requests.append(request)
        return self.inner.complete(request)


class StubbornReasoner(RecordingReasoner):
    """Answers every refinement with its first mask and every adaptation with unchanged principles.

    This is what a reasoner that ignores "the current space stopped paying" looks like; the graph itself
    must then make sure a stalled search moves to a region it has not tried.
    """

    def __init__(self) -> None:
        super().__init__()
        self.first_mask: AgentReply | None = None

    def complete(self, request: AgentRequest) -> AgentReply:
        self.requests.append(request)
        if request.kind == "refine":
            if self.first_mask is None:
                self.first_mask = self.inner.complete(request)
            return self.first_mask
        if request.kind.startswith("adapt"):
            draft = {"analysis": "no change", "principles": request.payload["principles"]}
            return AgentReply(value=request.schema.model_validate(draft))
        return self.inner.complete(request)


def _spec(space, mask_record):
    return to_spec(space, mask_model(space)(**mask_record["mask"]))


def test_trials_say_whether_they_were_outside_the_region():
    result = lapt.run(space="tnb101", sources=["jigsaw"], target="room_layout", budget=50, seed=1)
    # Only trials outside the region say so (the others leave the key out, to keep the record small).
    assert all(t.extras.get("outside_region", True) is True for t in result.trials)
    flags = [bool(t.extras.get("outside_region")) for t in result.trials]
    assert not any(flags[:10])  # REA's first population is drawn inside the region
    assert 0 < sum(flags) < 25
    assert result.summary["outside_region"] == sum(flags)
    for trial, flag in zip(result.trials, flags, strict=True):
        active = result.masks[trial.mask_version]  # the mask the trial was drawn in
        assert flag == (not TNB.contains(TNB.parse(trial.arch), _spec(TNB, active)))


def test_no_escape_searches_only_inside_uniformly():
    result = lapt.run(space="tnb101", sources=["jigsaw"], target="room_layout", budget=30, seed=1, escape=False)
    assert not any(t.extras.get("outside_region") for t in result.trials)
    assert result.settings.escape is False


def test_adapter_gets_evidence_tried_regions_and_the_op_limit():
    rec = RecordingReasoner()
    result = lapt.run(space="tnb101", sources=["jigsaw"], target="normal", budget=30, seed=0, reasoner=rec)
    adapts = [r for r in rec.requests if r.kind.startswith("adapt")]
    assert len(adapts) >= 2
    for i, req in enumerate(adapts):
        ev = req.payload["evidence"]
        assert ev["sources"][0]["task"] == "jigsaw" and ev["evaluations"] == 10 * (i + 1)
        assert set(ev["layers"]) == set(TNB.layer_names)
        assert req.payload["max_ops"] == 3
        # The regions tried before the current one, each once, the current one last and apart.
        tried, current = req.payload["tried_regions"], req.payload["current_mask"]
        made = [m["mask"] for m in result.masks]
        assert current in made and current not in tried and all(m in made for m in tried)
        assert len({_spec(TNB, {"mask": m}) for m in tried}) == len(tried)
    # the evidence is target data: the adapter's decision records the target as seen
    assert all("normal" in d["saw_tasks"] for d in result.decisions if d["agent"] == "adapter")


@pytest.mark.parametrize("seed", range(3))
def test_a_stalled_search_never_goes_back_to_a_tried_region_even_with_a_stubborn_reasoner(seed):
    result = lapt.run(
        space="tnb101", sources=["jigsaw"], target="autoencoder", budget=60, seed=seed, adapt_every=5,
        reasoner=StubbornReasoner(),
    )  # fmt: skip
    adapts = [d for d in result.decisions if d["agent"] == "adapter"]
    stalled_rounds = {i + 1 for i, d in enumerate(adapts) if d["branch"] == "stalled"}
    assert stalled_rounds, "the scenario should stall at least once"
    masks = [m for m in result.masks if m["source"] != "widened"]
    for k, m in enumerate(masks):
        if m["round"] in stalled_rounds:
            earlier = {_spec(TNB, e) for e in result.masks[: result.masks.index(m)]}
            assert _spec(TNB, m) not in earlier
            assert m["source"] == "untried" and "tried before" in m["note"]
        elif m["round"] > 0 and k > 0:
            assert m["source"] == "refiner"  # improved: the stubborn region is kept as the reasoner said


@pytest.mark.parametrize("seed", range(4))
def test_offline_stalled_branch_proposes_new_regions(seed):
    result = lapt.run(space="tnb101", sources=["jigsaw"], target="normal", budget=80, seed=seed, adapt_every=5)
    adapts = [d for d in result.decisions if d["agent"] == "adapter"]
    stalled_rounds = {i + 1 for i, d in enumerate(adapts) if d["branch"] == "stalled"}
    for m in result.masks:
        if m["round"] in stalled_rounds and m["source"] != "widened":
            earlier = [_spec(TNB, e) for e in result.masks[: result.masks.index(m)]]
            assert _spec(TNB, m) not in earlier


@pytest.mark.parametrize("seed", range(3))
def test_steps_outside_a_constrained_user_space_are_valid_architectures(seed):
    """Variable depth (optional trailing blocks): a probe outside the region is still an architecture."""
    from pathlib import Path

    from lapt.spaces import get_space

    path = Path(__file__).resolve().parents[1] / "examples" / "digits_family" / "digits_space.toml"
    space = get_space(str(path))
    result = lapt.run(space=str(path), sources=["digits"], target="few_digits", budget=40, seed=seed)
    full = space.full_mask()
    assert all(space.contains(space.parse(t.arch), full) for t in result.trials)
    for t in result.trials:
        inside = space.contains(space.parse(t.arch), _spec(space, result.masks[t.mask_version]))
        assert inside != bool(t.extras.get("outside_region"))
    assert result.summary["outside_region"] >= 1  # the small regions here leave room to step out
