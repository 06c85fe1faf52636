"""The space refiner: turns principles into a validated per-space Pydantic mask."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lapt.agents import compact
from lapt.agents.judges import mask_judge
from lapt.agents.outcome import AgentOutcome
from lapt.agents.prompts import PromptSet
from lapt.agents.reasoner import AgentRequest, Reasoner
from lapt.schemas import PrincipleSet
from lapt.spaces import Genotype, MaskSpec, SearchSpace
from lapt.transfer.masks import MaskBase, mask_model, to_spec

Refiner = Callable[..., AgentOutcome[MaskBase]]

SHOWN_REGIONS = 6
"""Tried regions listed in the prompt (the most recent distinct ones): a long run may have tried dozens,
and the list would outgrow the token budget. Every tried region is still refused by the answer check, so
an older one proposed again goes back for repair with the reason."""


def region_spec(space: SearchSpace, mask: Mapping[str, Any]) -> MaskSpec:
    """The canonical form of a mask given as JSON (so that two masks can be compared).

    A run compares every refinement with all the regions it tried: the same mask objects each time, so
    their forms are kept by object (with the object, so an id is never reused for another mask).
    """
    hit = _SPECS.get(id(mask))
    if hit is not None and hit[0] is mask and hit[1] is space:
        return hit[2]
    spec = to_spec(space, mask_model(space).model_validate(dict(mask)))
    if len(_SPECS) > 65_536:
        _SPECS.clear()
    _SPECS[id(mask)] = (mask, space, spec)
    return spec


_SPECS: dict[int, tuple[Mapping[str, Any], SearchSpace, MaskSpec]] = {}


def distinct_regions(space: SearchSpace, masks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``masks`` without repeats of the same region, most recent last."""
    seen: dict[MaskSpec, Mapping[str, Any]] = {}
    for m in masks:
        spec = region_spec(space, m)
        seen.pop(spec, None)
        seen[spec] = m
    return list(seen.values())


def avoid_regions_section(space: SearchSpace, regions: Sequence[Mapping[str, Any]]) -> str:
    """The prompt block listing regions the answer must differ from (empty when there are none)."""
    if not regions:
        return ""
    shown = list(regions)[-SHOWN_REGIONS:]
    older = (
        f" ({len(regions) - len(shown)} earlier ones are not shown and are refused too)"
        if len(regions) > len(shown)
        else ""
    )
    return (
        f"\n## Regions already tried (propose none of them again){older}\n"
        f"The allowed ops of each layer, in the order {compact.layer_order(space)}, separated by |. "
        f"Op codes: {compact.legend(space)}.\n{compact.regions(space, shown)}\n"
    )


def make_space_refiner(reasoner: Reasoner, prompts: PromptSet) -> Refiner:
    """Build the refiner agent; its answers are validated by the space's mask class."""
    grounded = reasoner.name != "offline"

    def refine(
        space: SearchSpace,
        principles: PrincipleSet,
        max_ops: int,
        target_task: str,
        context: str = "Initial refinement from the transferred principles.",
        avoid_regions: Sequence[Mapping[str, Any]] = (),
        best: Sequence[Genotype] = (),
    ) -> AgentOutcome[MaskBase]:
        """A mask for ``principles``; with ``avoid_regions`` (masks as JSON) a mask equal to one of them is
        refused and sent back for repair, so a stalled search never gets a region it already tried.

        A model's mask is also judged against the evidence (:mod:`lapt.transfer.mask_judging`): it must
        agree with ``principles`` and, given ``best`` (the source's top architectures, at the first
        refinement), keep enough of them. The offline refiner's regions are built from the same figures.
        """
        schema = mask_model(space, max_ops)
        avoid_regions = distinct_regions(space, avoid_regions)
        tried = {region_spec(space, m) for m in avoid_regions}

        def new_region(value: Any) -> str | None:
            if isinstance(value, MaskBase) and to_spec(space, value) in tried:
                return "this region was already tried; propose a different one (see 'Regions already tried')"
            return None

        user = prompts.render(
            "refiner",
            target_task=target_task,
            max_ops=max_ops,
            space_summary=compact.space_summary(space),
            principles=compact.principles(principles.principles),
            context=context,
            avoid_regions=avoid_regions_section(space, avoid_regions),
            inputs_rule="- Every node also keeps at least 2 allowed input states.\n" if space.has_inputs else "",
            answer_format=compact.mask_example(space, max_ops),
        )
        needing = space.layers_needing_an_op()
        payload: dict[str, Any] = {
            "space": space.name,
            "layers": [
                {"name": la.name, "ops": list(la.ops), "inputs": list(la.inputs), "needs_op": la.name in needing}
                for la in space.layers
            ],
            "principles": [p.model_dump() for p in principles.principles],
            "max_ops": max_ops,
            "avoid_regions": list(avoid_regions),  # the same objects: their region keys are cached by object
        }
        request = AgentRequest(
            "refine",
            prompts.render("system"),
            user,
            payload,
            schema,
            check=new_region if tried else None,
            amend=mask_judge(space, principles.principles, best) if grounded else None,
        )
        reply = reasoner.complete(request)
        value = reply.value if isinstance(reply.value, MaskBase) else None
        return AgentOutcome(value=value, reply=reply, saw_tasks=list(principles.tasks_seen))

    return refine
