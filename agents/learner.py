"""The principle learner: reads the best architectures of the source task(s), states principles."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lapt.agents.outcome import AgentOutcome
from lapt.agents.prompts import PromptSet
from lapt.agents.reasoner import AgentRequest, Reasoner
from lapt.evidence import format_architectures, format_statistics, layer_statistics
from lapt.schemas import PrincipleDraft, PrincipleSet
from lapt.spaces import Genotype, SearchSpace


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
    """The per-space prompt with the space's code filled in."""
    return prompts.space_description(
        space.name, space_size=f"{space.size():,}", space_code=space.describe_code(), space_title=space.title
    )


def make_principle_learner(reasoner: Reasoner, prompts: PromptSet, top_k: int = 50) -> Learner:
    """Build the learner agent around ``reasoner`` (LLM or offline) and ``prompts``."""

    def learn(space: SearchSpace, sources: Sequence[SourceData]) -> AgentOutcome[PrincipleSet]:
        blocks, payload_sources = [], {}
        for src in sources:
            order = np.argsort(-np.nan_to_num(src.values, nan=-np.inf), kind="stable")[:top_k]
            top = [(src.archs[i], float(src.values[i])) for i in order]
            stats = layer_statistics(space, src.archs, src.values, top_k)
            label = src.task if len(sources) > 1 else ""
            blocks.append((src.task, format_architectures(space, top, label), format_statistics(stats)))
            payload_sources[src.task] = {
                "top": [[space.describe_genotype(g), v] for g, v in top],
                "stats": stats,
            }
        tasks = [s.task for s in sources]
        user = prompts.render(
            "learner",
            source_tasks=", ".join(tasks),
            space_description=space_description(space, prompts),
            top_architectures="\n".join(f"### {t}\n{a}" for t, a, _ in blocks),
            top_k=top_k,
            layer_statistics="\n".join(f"### {t}\n{s}" for t, _, s in blocks),
            layer_names=", ".join(space.layer_names),
        )
        payload = {
            "space": space.name,
            "layers": [{"name": la.name, "ops": list(la.ops)} for la in space.layers],
            "sources": payload_sources,
        }
        request = AgentRequest("learn", prompts.render("system"), user, payload, PrincipleDraft)
        reply = reasoner.complete(request)
        value = None
        if isinstance(reply.value, PrincipleDraft):
            value = PrincipleSet(
                version=0,
                space=space.name,
                source=f"learned on {space.name}: {', '.join(tasks)} (top {top_k})",
                tasks_seen=tasks,
                reasoner=f"{reasoner.name}:{reasoner.model}",
                analysis=reply.value.analysis,
                principles=reply.value.principles,
            )
        return AgentOutcome(value=value, reply=reply, saw_tasks=tasks)

    return learn


def dump_principles(pset: PrincipleSet) -> str:
    """Principles as indented JSON for prompts (without the long analysis)."""
    return json.dumps([p.model_dump(exclude_defaults=True) for p in pset.principles], indent=1)
