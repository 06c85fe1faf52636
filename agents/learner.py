"""The principle learner: reads the best architectures of the source task(s), states principles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lapt.agents import compact
from lapt.agents.judges import principle_judge
from lapt.agents.outcome import AgentOutcome
from lapt.agents.prompts import PromptSet
from lapt.agents.reasoner import AgentRequest, Reasoner
from lapt.schemas import PrincipleSet, draft_principles, principle_draft_model
from lapt.spaces import Genotype, SearchSpace
from lapt.transfer.evidence import layer_statistics
from lapt.transfer.grounding import SourceSupport, top_indices


@dataclass(frozen=True)
class SourceData:
    """Everything known about one source task: architectures and their validation metric.

    Only source-task data may ever be put here; the graph builds it from the source tables alone.
    """

    task: str
    archs: Sequence[Genotype]
    values: np.ndarray


Learner = Callable[[SearchSpace, Sequence[SourceData]], AgentOutcome[PrincipleSet]]


def space_description(space: SearchSpace, prompts: PromptSet) -> str:
    """The per-space prompt with the space's code filled in (what the learner reads)."""
    return prompts.space_description(
        space.name, space_size=f"{space.size():,}", space_code=space.describe_code(), space_title=space.title
    )


def make_principle_learner(reasoner: Reasoner, prompts: PromptSet, top_k: int = 50) -> Learner:
    """Build the learner agent around ``reasoner`` (LLM or offline) and ``prompts``.

    The answer schema is :func:`~lapt.schemas.principle_draft_model` of the space, so layer and op
    names are checked when the answer arrives; each principle is then judged on its own
    (:func:`~lapt.agents.judges.principle_judge`), a model's against the source data it was shown. The result is a
    space-independent PrincipleSet.
    """

    grounded = reasoner.name != "offline"

    def learn(space: SearchSpace, sources: Sequence[SourceData]) -> AgentOutcome[PrincipleSet]:
        blocks, payload_sources = [], {}
        titled = len(sources) > 1  # tasks are named (a heading, a label per line) only when there are several
        for src in sources:
            order = top_indices(src.values, top_k)
            top = [(space.describe_genotype(src.archs[i]), float(src.values[i])) for i in order]
            stats = layer_statistics(space, src.archs, src.values, top_k)
            rows = compact.architecture_rows(
                space, [(arch, val, False) for arch, val in top], label=src.task if titled else ""
            )
            blocks.append((src.task, rows, compact.statistics(space, stats)))
            payload_sources[src.task] = {"top": [[arch, val] for arch, val in top], "stats": stats}
        tasks = [s.task for s in sources]
        user = prompts.render(
            "learner",
            source_tasks=", ".join(tasks),
            space_description=space_description(space, prompts),
            layer_order=compact.layer_order(space),
            op_legend=compact.legend(space),
            top_k=top_k,
            top_architectures="\n".join(f"### {t}\n{a}" if titled else a for t, a, _ in blocks),
            layer_statistics="\n".join(f"### {t}\n{s}" if titled else s for t, _, s in blocks),
            answer_format=compact.principles_example(space),
        )
        payload = {
            "space": space.name,
            "layers": [{"name": la.name, "ops": list(la.ops)} for la in space.layers],
            "sources": payload_sources,
        }
        schema = principle_draft_model(space)
        # The miner's answers are the data's own figures; a model's claims are checked against them.
        support = SourceSupport.of(space, [(s.archs, s.values) for s in sources], top_k) if grounded else None
        amend = principle_judge(space, schema, support)
        request = AgentRequest("learn", prompts.render("system"), user, payload, schema, amend=amend)
        reply = reasoner.complete(request)
        value = None
        if isinstance(reply.value, schema):
            analysis, principles = draft_principles(reply.value)
            value = PrincipleSet(
                version=0,
                space=space.name,
                source=f"learned on {space.name}: {', '.join(tasks)} (top {top_k})",
                tasks_seen=tasks,
                reasoner=f"{reasoner.name}:{reasoner.model}",
                analysis=analysis,
                principles=principles,
            )
        return AgentOutcome(value=value, reply=reply, saw_tasks=tasks)

    return learn
