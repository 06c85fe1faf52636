"""The run context: fixed settings and live dependencies, handed to every node (LangGraph context_schema).

Nothing here is checkpointed; a resumed run rebuilds it from the saved settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lapt.agents.adapter import Adapter
from lapt.agents.learner import Learner, SourceData
from lapt.agents.refiner import Refiner
from lapt.config import RunSettings
from lapt.schemas import PrincipleSet, Trial
from lapt.spaces import SearchSpace
from lapt.tools.evaluation import Evaluator


@dataclass
class RunContext:
    """Settings plus the objects the nodes call.

    Attributes:
        settings: the resolved run settings.
        space: the search space.
        evaluator: scores architectures on the target task.
        learner, refiner, adapter: the three agents.
        sources: loads the source-task data (only called when principles must be learned).
        initial_principles: start from these instead of learning (a stored or exported set).
        executor: where evaluations run (``lapt.tools.executors``); closed when the run ends.
        on_trial: called with every new trial (progress bars, live files).
        on_event: called with ``(kind, payload)`` for principles, masks and decisions (run directory).
    """

    settings: RunSettings
    space: SearchSpace
    evaluator: Evaluator
    learner: Learner
    refiner: Refiner
    adapter: Adapter
    sources: Callable[[], Sequence[SourceData]]
    initial_principles: PrincipleSet | None = None
    executor: Any = None
    on_trial: Callable[[Trial], None] = field(default=lambda t: None)
    on_event: Callable[[str, dict[str, Any]], None] = field(default=lambda k, p: None)


# Set by graph/studio.py so that LangGraph Studio / `langgraph dev` can pass plain JSON settings as the
# context; programmatic runs always pass a ready RunContext.
CONTEXT_FACTORY: list[Callable[[Any], RunContext]] = []


def context_of(runtime: Any) -> RunContext:
    """The run context of a node call, built from JSON settings when a server passed those."""
    ctx = runtime.context
    if isinstance(ctx, RunContext):
        return ctx
    if not CONTEXT_FACTORY:
        raise TypeError("the LAPT graph needs a RunContext (see lapt.api.build_context)")
    return CONTEXT_FACTORY[0](ctx or {})
