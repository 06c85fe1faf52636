"""The adapter: updates principles from what the search on the target task found.

Two branches, as in the paper: if the best result improved since the last check, the principles are
updated from the best target architectures; if it stalled, new principles derived from the ORIGINAL
ones point the refiner at other ops.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

from lapt.agents.learner import dump_principles, space_description
from lapt.agents.outcome import AgentOutcome
from lapt.agents.prompts import PromptSet
from lapt.agents.reasoner import AgentRequest, Reasoner
from lapt.schemas import PrincipleDraft, PrincipleSet
from lapt.spaces import SearchSpace

Adapter = Callable[..., AgentOutcome[PrincipleSet]]


def make_adapter(reasoner: Reasoner, prompts: PromptSet) -> Adapter:
    """Build the adapter agent around ``reasoner``."""

    def adapt(
        branch: Literal["improved", "stalled"],
        space: SearchSpace,
        original: PrincipleSet,
        current: PrincipleSet,
        target_task: str,
        top_target: Sequence[tuple[dict[str, Any], float]],
        current_mask: dict[str, Any],
    ) -> AgentOutcome[PrincipleSet]:
        rows = "\n".join(f"{list(arch.values())} -> {val:.4f}" for arch, val in top_target)
        desc = space_description(space, prompts)
        if branch == "improved":
            user = prompts.render(
                "adapter_improved",
                target_task=target_task,
                space_description=desc,
                original_principles=dump_principles(original),
                principles=dump_principles(current),
                top_target=rows,
            )
        else:
            best = f"{list(top_target[0][0].values())} -> {top_target[0][1]:.4f}" if top_target else "none yet"
            user = prompts.render(
                "adapter_stalled",
                target_task=target_task,
                current_mask=json.dumps(current_mask),
                best_so_far=best,
                space_description=desc,
                original_principles=dump_principles(original),
            )
        payload = {
            "space": space.name,
            "original_principles": [p.model_dump() for p in original.principles],
            "principles": [p.model_dump() for p in current.principles],
            "top_target": [{"arch": arch, "val": val} for arch, val in top_target],
            "best_arch": top_target[0][0] if top_target else None,
            "current_mask": current_mask,
        }
        kind: Any = f"adapt_{branch}"
        reply = reasoner.complete(AgentRequest(kind, prompts.render("system"), user, payload, PrincipleDraft))
        value = None
        if isinstance(reply.value, PrincipleDraft):
            value = PrincipleSet(
                version=current.version + 1,
                space=space.name,
                source=f"adapted on {target_task} ({branch})",
                tasks_seen=sorted(set(current.tasks_seen) | {target_task}),
                reasoner=f"{reasoner.name}:{reasoner.model}",
                analysis=reply.value.analysis,
                principles=reply.value.principles,
            )
        return AgentOutcome(value=value, reply=reply, saw_tasks=sorted(set(original.tasks_seen) | {target_task}))

    return adapt
