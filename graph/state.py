"""The graph state: only what evolves during a run.

Principles, masks and trials are plain JSON (Pydantic dumps) so the SQLite checkpointer can store them
and a resumed run sees exactly what the killed one had. Clients, tables and prompts live in the run
context, never here.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage


class LaptState(TypedDict, total=False):
    """State of one LAPT run.

    Attributes:
        principles: every PrincipleSet version (dicts), oldest first.
        masks: every mask version: ``{"version", "round", "mask", "source", "note"}``.
        trials: every evaluation (Trial dicts), in order; appended by the record node.
        strategy: the search strategy's JSON state.
        messages: the tool-call round trip of the batch being evaluated; emptied after each batch.
        round: adaptation rounds done.
        since_adapt: evaluations since the last adaptation.
        best_at_adapt: best validation metric at the last adaptation (None before the first).
        branch: the last adaptation branch ("improved" or "stalled").
        empty_asks: consecutive proposals that found the current region exhausted.
        usage: LLM calls and tokens spent so far.
        decisions: one entry per agent decision (agent, ok, fallback reason, tasks seen).
        done: why the run ended ("budget", "exhausted"), None while running.
    """

    principles: list[dict[str, Any]]
    masks: list[dict[str, Any]]
    trials: Annotated[list[dict[str, Any]], operator.add]
    strategy: dict[str, Any]
    messages: list[AnyMessage]
    round: int
    since_adapt: int
    best_at_adapt: float | None
    branch: str | None
    empty_asks: int
    usage: dict[str, int]
    decisions: Annotated[list[dict[str, Any]], operator.add]
    done: str | None
