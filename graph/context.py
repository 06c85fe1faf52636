"""The run context: fixed settings and live dependencies, handed to every node (LangGraph context_schema).

Built once, complete, by the run assembler (:mod:`lapt.graph.assembly`) and frozen: no field is
replaced after construction. Nothing here is checkpointed; a resumed run builds it again from the
saved settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lapt.agents.adapter import Adapter
from lapt.agents.learner import Learner, SourceData
from lapt.agents.refiner import Refiner
from lapt.runs.config import RunSettings
from lapt.schemas import PrincipleSet
from lapt.search.session import SearchSession
from lapt.spaces import SearchSpace
from lapt.tools.evaluation import Evaluator


@dataclass(frozen=True)
class Agents:
    """The three agents of a run (each already traced, see :func:`lapt.graph.assembly.build_agents`).

    Attributes:
        fallback_learner: the offline miner's learner, beside a model's (None when the run is offline):
            its principles are used when the model's are all rejected (``on_agent_failure="fallback"``).
        fallback_refiner: the offline refiner, whose region replaces a model's mask that stays invalid or
            ungrounded after its repairs.
    """

    learner: Learner
    refiner: Refiner
    adapter: Adapter
    fallback_learner: Learner | None = None
    fallback_refiner: Refiner | None = None


@dataclass(frozen=True)
class RunContext:
    """Settings plus the objects the nodes call.

    Attributes:
        settings: the resolved run settings.
        space: the search space.
        evaluator: scores architectures on the target task (behind the run's evaluation cache and
            executor when it has them).
        agents: the principle learner, the space refiner and the adapter.
        sources: loads the source-task data (only called when principles must be learned).
        search: the live search session (strategy, masks, trials), kept in step with the state.
        initial_principles: start from these instead of learning (a stored or exported set).
    """

    settings: RunSettings
    space: SearchSpace
    evaluator: Evaluator
    agents: Agents
    sources: Callable[[], Sequence[SourceData]]
    search: SearchSession
    initial_principles: PrincipleSet | None = None


ContextResolver = Callable[[object], RunContext]
"""Turns what LangGraph passes as ``runtime.context`` into a RunContext (identity for programmatic runs;
a JSON-settings factory for LangGraph Studio, see :mod:`lapt.graph.studio`)."""


def given_context(value: object) -> RunContext:
    """The resolver of programmatic runs: the context is a RunContext already."""
    if not isinstance(value, RunContext):
        raise TypeError("the LAPT graph needs a RunContext (see lapt.graph.assembly.build_context)")
    return value
