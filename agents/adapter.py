"""The adapter: updates principles from what the search on the target task found.

Two branches, as in the paper: if the best result improved since the last check, the principles are
updated from the best target architectures; if it stalled, new principles derived from the ORIGINAL
ones point the refiner at other ops. Either way the answer is the complete new set (it replaces the
current one), and an answer that silently drops a layer the set covered is sent back for repair.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from lapt.agents import compact
from lapt.agents.judges import principle_judge
from lapt.agents.outcome import AgentOutcome
from lapt.agents.prompts import PromptSet
from lapt.agents.reasoner import AgentKind, AgentRequest, Reasoner
from lapt.agents.refiner import SHOWN_REGIONS
from lapt.schemas import PrincipleSet, draft_principles, principle_draft_model
from lapt.spaces import SearchSpace


class TargetRow(NamedTuple):
    """One evaluated target architecture: ``{layer: choice}``, its validation metric, and whether it was
    evaluated since the last adaptation."""

    arch: Mapping[str, Any]
    val: float
    new: bool = False


@dataclass(frozen=True)
class AdaptInput:
    """Everything the adapter may see, built by the graph.

    Attributes:
        branch: ``improved`` (the best result improved since the last adaptation) or ``stalled``.
        space: the search space.
        original: the principles the run started from (learned on the sources, or given).
        current: the latest principle set.
        target_task: the task being searched.
        current_mask: the mask (JSON) every target architecture so far was drawn in.
        top_target: the best target architectures, best first (tuples or :class:`TargetRow`).
        tried_regions: masks (JSON) tried before the current one, oldest first.
        evidence: the target evidence of :mod:`lapt.transfer.target_evidence` (per layer and op, how the target did
            against the sources' prediction). The offline miner adapts from it; an LLM reads its calibrated
            hit rates in the prompt (:func:`lapt.agents.compact.target_evidence`).
        max_ops: the most ops a refined layer may keep (the region the evidence supports is no larger).
    """

    branch: Literal["improved", "stalled"]
    space: SearchSpace
    original: PrincipleSet
    current: PrincipleSet
    target_task: str
    current_mask: Mapping[str, Any]
    top_target: Sequence[tuple[Any, ...]] = ()
    tried_regions: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    evidence: Mapping[str, Any] | None = None
    max_ops: int | None = None

    def rows(self) -> list[TargetRow]:
        return [TargetRow(*row) for row in self.top_target]

    def brief(self) -> dict[str, Any]:
        """A short JSON view for traces: what the adapter was asked, without repeating whole sets."""
        rows = self.rows()
        return {
            "branch": self.branch,
            "space": self.space.name,
            "target_task": self.target_task,
            "original": {"version": self.original.version, "principles": len(self.original.principles)},
            "current": {"version": self.current.version, "principles": len(self.current.principles)},
            "current_region": compact.region(self.space, self.current_mask),
            "top_target": [
                {"arch": compact.arch_line(self.space, r.arch), "val": r.val, "new": r.new} for r in rows
            ],
            "tried_regions": len(self.tried_regions),
            "evidence": self.evidence is not None,
        }


Adapter = Callable[[AdaptInput], AgentOutcome[PrincipleSet]]


def _covered(pset: PrincipleSet, space: SearchSpace) -> list[str]:
    """The layers of ``space`` that ``pset`` has a principle about, in layer order."""
    named = {p.layer for p in pset.principles}
    return [name for name in space.layer_names if name in named]


def make_adapter(reasoner: Reasoner, prompts: PromptSet) -> Adapter:
    """Build the adapter agent around ``reasoner``."""

    def adapt(inp: AdaptInput) -> AgentOutcome[PrincipleSet]:
        space = inp.space
        rows = inp.rows()
        # The set the answer replaces, and so the layers it must keep covering.
        basis = inp.current if inp.branch == "improved" else inp.original
        must_cover = _covered(basis, space)
        schema = principle_draft_model(space)

        def complete_set(value: Any) -> str | None:
            _, principles = draft_principles(value)
            missing = [layer for layer in must_cover if layer not in {p.layer for p in principles}]
            if missing:
                return (
                    "the answer must be the complete set: it has no principle for "
                    f"{', '.join(missing)}, which the set it replaces covers; include them (revised if needed)"
                )
            return None

        # The most recent regions only: a long run may have tried dozens, and the list would outgrow the
        # token budget (the refiner refuses any tried region, however old).
        tried = [*list(inp.tried_regions)[-(SHOWN_REGIONS - 1) :], inp.current_mask]
        if inp.branch == "improved":
            user = prompts.render(
                "adapter_improved",
                target_task=inp.target_task,
                space_summary=compact.space_summary(space),
                principles=compact.principles(inp.current.principles),
                layer_order=compact.layer_order(space),
                current_region=compact.region(space, inp.current_mask),
                op_legend=compact.legend(space),
                top_target=compact.architecture_rows(space, rows, mark_new=True),
                target_evidence=compact.target_evidence(space, inp.evidence),
                answer_format=compact.principles_example(space),
            )
        else:
            best = compact.architecture_rows(space, rows[:1]) if rows else "none yet"
            user = prompts.render(
                "adapter_stalled",
                target_task=inp.target_task,
                space_summary=compact.space_summary(space),
                layer_order=compact.layer_order(space),
                op_legend=compact.legend(space),
                tried_regions=compact.regions(space, tried),
                best_so_far=best,
                original_principles=compact.principles(inp.original.principles),
                target_evidence=compact.target_evidence(space, inp.evidence),
                answer_format=compact.principles_example(space),
            )
        payload = {
            "space": space.name,
            "original_principles": [p.model_dump() for p in inp.original.principles],
            "principles": [p.model_dump() for p in inp.current.principles],
            "top_target": [{"arch": dict(r.arch), "val": r.val, "new": r.new} for r in rows],
            "best_arch": dict(rows[0].arch) if rows else None,
            "current_mask": dict(inp.current_mask),
            "tried_regions": [dict(m) for m in inp.tried_regions],
            "evidence": dict(inp.evidence) if inp.evidence is not None else None,
            "layers": [{"name": la.name, "ops": list(la.ops)} for la in space.layers],
            "max_ops": inp.max_ops,
        }
        kind: AgentKind = "adapt_improved" if inp.branch == "improved" else "adapt_stalled"
        request = AgentRequest(
            kind,
            prompts.render("system"),
            user,
            payload,
            schema,
            check=complete_set if must_cover else None,
            amend=principle_judge(space, schema, None),  # its claims are about the target: no source grounding
        )
        reply = reasoner.complete(request)
        value = None
        if isinstance(reply.value, schema):
            analysis, principles = draft_principles(reply.value)
            value = PrincipleSet(
                version=inp.current.version + 1,
                space=space.name,
                source=f"adapted on {inp.target_task} ({inp.branch})",
                tasks_seen=sorted(set(inp.current.tasks_seen) | {inp.target_task}),
                reasoner=f"{reasoner.name}:{reasoner.model}",
                analysis=analysis,
                principles=principles,
            )
        saw = sorted(set(inp.original.tasks_seen) | {inp.target_task})
        return AgentOutcome(value=value, reply=reply, saw_tasks=saw)

    return adapt
