"""Conditional edges: when to adapt, when to stop."""

from __future__ import annotations

from typing import Literal

from lapt.graph.state import LaptState
from lapt.runs.config import RunSettings


def after_learn(state: LaptState) -> Literal["refine_space", "finish"]:
    """Refine the space, unless the learner failed and the run stops (see ``on_agent_failure``)."""
    return "finish" if state.get("done") else "refine_space"


def after_search(state: LaptState, settings: RunSettings) -> Literal["evaluate", "adapt", "finish"]:
    """Evaluate the proposed batch; if the region is exhausted, adapt once (to widen it), then stop."""
    if state.get("pending"):
        return "evaluate"
    if settings.adapt and state.get("empty_asks", 0) <= 1 and state.get("principles"):
        return "adapt"
    return "finish"


def after_evaluate(state: LaptState, settings: RunSettings) -> Literal["search", "adapt", "finish"]:
    """Stop at the budget; adapt every ``adapt_every`` evaluations; otherwise keep searching."""
    if state.get("n_trials", 0) >= settings.budget:
        return "finish"
    if settings.adapt and settings.adapt_every and state.get("since_adapt", 0) >= settings.adapt_every:
        return "adapt"
    return "search"


def recursion_limit(budget: int, adapt_every: int | None, batch_size: int = 1) -> int:
    """An upper bound on the supersteps of a run, so LangGraph's limit never cuts a legal run short.

    Each evaluation takes at most 2 steps (search, evaluate; a batch takes 2 for several). Each adaptation
    takes 3 (an empty search that triggered it or the evaluation before it, adapt, refine). Scheduled
    adaptations number budget // adapt_every; one triggered by an exhausted region must be followed by an
    evaluation or the end (a second empty search finishes the run), so there are at most budget + 1.
    Learning, the first refinement and the end add a few more.
    """
    scheduled = budget // adapt_every if adapt_every else 0
    return 2 * budget + 3 * (scheduled + budget + 1) + 10
