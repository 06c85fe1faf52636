"""What every agent returns to the graph: the decision, the reasoner's bookkeeping, and what it saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from lapt.agents.reasoner import AgentReply

T = TypeVar("T")


@dataclass
class AgentOutcome(Generic[T]):
    """``value`` is None when the reasoner gave no valid answer; ``reply.error`` then says why."""

    value: T | None
    reply: AgentReply
    saw_tasks: list[str] = field(default_factory=list)
