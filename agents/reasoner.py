"""The one interface both reasoners implement: a request in, a validated Pydantic object out.

Agents build an :class:`AgentRequest` holding both the rendered prompt (for a language model) and the
same facts as structured data (``payload``, for the offline miner), so swapping the reasoner never
changes what an agent is allowed to see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel

AgentKind = Literal["learn", "refine", "adapt_improved", "adapt_stalled"]


@dataclass(frozen=True)
class AgentRequest:
    """What an agent asks of its reasoner."""

    kind: AgentKind
    system: str
    user: str
    payload: dict[str, Any]
    schema: type[BaseModel]


@dataclass
class AgentReply:
    """A reasoner's answer: ``value`` is validated against the request's schema, or None with ``error``."""

    value: BaseModel | None
    error: str | None = None
    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    attempts: list[str] = field(default_factory=list)


class Reasoner(Protocol):
    """Anything that can answer agent requests: the LLM reasoner and the offline miner."""

    name: str
    model: str

    def complete(self, request: AgentRequest) -> AgentReply:
        """Answer ``request`` with an instance of ``request.schema`` (or an error, never an exception)."""
        ...
