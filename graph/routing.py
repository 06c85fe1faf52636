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
    """Supersteps a run can take: 3 per batch (search, evaluate, record), 2 per adaptation, plus slack."""
    batches = budget  # a batch may be cut short at an adaptation boundary, so count one per evaluation
    adaptations = budget // adapt_every + 2 if adapt_every else 0
    return 3 * batches + 2 * adaptations + 2 * 3 + 10
