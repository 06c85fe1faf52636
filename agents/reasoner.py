"""The one interface both reasoners implement: a request in, a validated Pydantic object out.

Agents build an :class:`AgentRequest` holding both the rendered prompt (for a language model) and the
same facts as structured data (``payload``, for the offline miner), so swapping the reasoner never
changes what an agent is allowed to see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel

AgentKind = Literal["learn", "refine", "adapt_improved", "adapt_stalled"]

# Why a reply has no value, in a word (``AgentReply.failure``). Configuration errors (wrong key, unknown
# model, unreachable endpoint before any answer, an option the server refuses) are not among them: they
# raise LLMConfigError, because no later call could succeed either.
FailureKind = Literal[
    "timeout",  # every attempt ran past the per-call timeout
    "unreachable",  # the connection failed on every attempt (after earlier calls had worked)
    "rate_limited",  # 429 on every attempt
    "server_error",  # 5xx (or a malformed 200 body) on every attempt
    "bad_request",  # the server refused the request (400/422) for a reason lapt cannot work around
    "context_too_long",  # the request does not fit the model's context window
    "no_structured_output",  # the server refused every structured-output method
    "invalid_answer",  # answers kept failing validation after every repair round
    "truncated",  # the last answer was cut at the token limit (raise max_tokens)
]


@dataclass(frozen=True)
class AgentRequest:
    """What an agent asks of its reasoner.

    Attributes:
        check: an extra test of a schema-valid answer (e.g. "a region already tried"); returns why the
            answer is refused, or None. A refused answer is sent back for repair like a schema error.
        amend: judges a schema-valid answer part by part (:class:`Amended`): drops what breaks a rule
            and keeps the rest, so one bad principle costs that principle, not the answer. Applied
            before ``check``.
    """

    kind: AgentKind
    system: str
    user: str
    payload: dict[str, Any]
    schema: type[BaseModel]
    check: Callable[[BaseModel], str | None] | None = None
    amend: Callable[[BaseModel], Amended] | None = None


@dataclass(frozen=True)
class Amended:
    """A schema-valid answer after the agent's part-by-part judgement.

    Attributes:
        value: the answer with what broke a rule removed; None when nothing usable is left.
        changes: one line per change made, with its reason (recorded in the decision and the trace).
        problem: why nothing usable is left (sent back for repair); None when ``value`` is set.
        contested: parts the data contradicts (already removed from ``value``): quoted back to the model
            once, since its repair may state something better than what the removal leaves.
        support: the data's figures for what was kept, for the record.
    """

    value: BaseModel | None
    changes: tuple[str, ...] = ()
    problem: str | None = None
    contested: str | None = None
    support: tuple[str, ...] = ()


@dataclass
class AgentReply:
    """A reasoner's answer: ``value`` is validated against the request's schema, or None with ``error``.

    Attributes:
        error: one line saying why there is no value (None when there is one).
        failure: the kind of failure in a word (see :data:`FailureKind`); None when there is a value.
        extraction: how the value was read from the answer: ``tool_call``, ``json`` (the whole text),
            ``after_think`` (the text after a ``<think>`` block), ``fenced``, ``embedded`` (an object inside
            prose), ``unwrapped`` (the one value of a wrapper object), ``reasoning_content`` (the server's
            reasoning field), ``inside_think``; ``offline`` for the miner. A cached answer is read the
            same way as a fresh one.
        method: the structured-output method that produced the answer (LLM only).
        changes: what the part-by-part judgement removed from the accepted answer, one line each.
        support: the data's figures for what the accepted answer kept (grounded agents only).
    """

    value: BaseModel | None
    error: str | None = None
    failure: FailureKind | None = None
    extraction: str | None = None
    method: str | None = None
    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    attempts: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    support: list[str] = field(default_factory=list)

    def take(self, judged: Amended) -> None:
        """Record what the judgement of the accepted answer changed and what supports it."""
        self.changes = list(judged.changes)
        self.support = list(judged.support)


def checked(request: AgentRequest, value: BaseModel) -> str | None:
    """Why ``request.check`` refuses ``value`` (None when there is no check or it passes)."""
    return request.check(value) if request.check is not None else None


def judged(request: AgentRequest, value: BaseModel) -> Amended:
    """``value`` after ``request.amend`` and ``request.check``: what is kept, changed, or why nothing is."""
    out = request.amend(value) if request.amend is not None else Amended(value)
    problem = checked(request, out.value if out.value is not None else value)
    if out.value is None:  # both reasons at once: a repair that fixes one should not fall to the other
        return Amended(None, out.changes, "; ".join(p for p in (out.problem, problem) if p))
    if problem is not None:
        return Amended(None, out.changes, problem)
    return out


class Reasoner(Protocol):
    """Anything that can answer agent requests: the LLM reasoner and the offline miner."""

    name: str
    model: str

    def complete(self, request: AgentRequest) -> AgentReply:
        """Answer ``request`` with an instance of ``request.schema`` (or an error, never an exception)."""
        ...
