"""Conditional edges: when to adapt, when to stop."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime

from lapt.graph.context import RunContext, context_of
from lapt.graph.state import LaptState


def after_search(state: LaptState, runtime: Runtime[RunContext]) -> Literal["evaluate", "adapt", "finish"]:
    """Evaluate the proposed batch; if the region is exhausted, adapt once (to widen it), then stop."""
    if state["messages"] and state["messages"][-1].tool_calls:
        return "evaluate"
    s = context_of(runtime).settings
    if s.adapt and state.get("empty_asks", 0) <= 1 and state.get("principles"):
        return "adapt"
    return "finish"


def after_record(state: LaptState, runtime: Runtime[RunContext]) -> Literal["search", "adapt", "finish"]:
    """Stop at the budget; adapt every ``adapt_every`` evaluations; otherwise keep searching."""
    s = context_of(runtime).settings
    if len(state.get("trials", [])) >= s.budget:
        return "finish"
    if s.adapt and s.adapt_every and state.get("since_adapt", 0) >= s.adapt_every:
        return "adapt"
    return "search"


def recursion_limit(budget: int, adapt_every: int | None, batch_size: int = 1) -> int:
    """An upper bound on the supersteps of a run, so LangGraph's limit never cuts a legal run short.

    Each evaluation takes at most 3 steps (search, evaluate, record; a batch takes 3 for several). Each
    adaptation takes 3 (an empty search that triggered it or the record before it, adapt, refine). Scheduled
    adaptations number budget // adapt_every; one triggered by an exhausted region must be followed by an
    evaluation or the end (a second empty search finishes the run), so there are at most budget + 1.
    """
    scheduled = budget // adapt_every if adapt_every else 0
    return 3 * budget + 3 * (scheduled + budget + 1) + 10
