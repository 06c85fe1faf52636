"""The space refiner: turns principles into a validated per-space Pydantic mask."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lapt.agents.learner import dump_principles, space_description
from lapt.agents.outcome import AgentOutcome
from lapt.agents.prompts import PromptSet
from lapt.agents.reasoner import AgentRequest, Reasoner
from lapt.masks import MaskBase, mask_model
from lapt.schemas import PrincipleSet
from lapt.spaces import SearchSpace

Refiner = Callable[..., AgentOutcome[MaskBase]]


def make_space_refiner(reasoner: Reasoner, prompts: PromptSet) -> Refiner:
    """Build the refiner agent; its answers are validated by the space's mask class."""

    def refine(
        space: SearchSpace,
        principles: PrincipleSet,
        max_ops: int,
        target_task: str,
        context: str = "Initial refinement from the transferred principles.",
    ) -> AgentOutcome[MaskBase]:
        schema = mask_model(space, max_ops)
        inputs_note = (
            ' or, for nodes, {"ops": [...], "inputs": [...]} with at least 2 allowed input states'
            if space.has_inputs
            else ""
        )
        user = prompts.render(
            "refiner",
            target_task=target_task,
            max_ops=max_ops,
            space_description=space_description(space, prompts),
            principles=dump_principles(principles),
            context=context,
            layer_names=", ".join(space.layer_names),
            inputs_note=inputs_note,
            mask_schema=json.dumps(schema.model_json_schema(), separators=(",", ":")),
        )
        payload: dict[str, Any] = {
            "space": space.name,
            "layers": [{"name": la.name, "ops": list(la.ops), "inputs": list(la.inputs)} for la in space.layers],
            "principles": [p.model_dump() for p in principles.principles],
            "max_ops": max_ops,
        }
        reply = reasoner.complete(AgentRequest("refine", prompts.render("system"), user, payload, schema))
        value = reply.value if isinstance(reply.value, MaskBase) else None
        return AgentOutcome(value=value, reply=reply, saw_tasks=list(principles.tasks_seen))

    return refine
