"""Entry point for LangGraph Studio and ``langgraph dev`` (see langgraph.json).

A server passes the run context as JSON, so this module registers a factory that turns JSON settings
(the fields of :class:`lapt.config.RunSettings`, e.g. ``{"space": "nb201", "sources": ["cifar10"],
"target": "cifar100", "budget": 20}``) into a full RunContext with the offline reasoner and the table
evaluator. Like the CLI, it is a composition root.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import Field

from lapt.api import build_context, resolve_settings
from lapt.config import RunSettings
from lapt.graph.build import build_graph
from lapt.graph.context import CONTEXT_FACTORY, RunContext


@functools.lru_cache(maxsize=8)
def _context(settings_json: str) -> RunContext:
    settings, space = resolve_settings(**json.loads(settings_json))
    ctx, _ = build_context(settings, space)
    return ctx


class StudioSettings(RunSettings):
    """Run settings with defaults for every field, so Studio can start a run from an empty form."""

    space: str = "nb201"
    sources: list[str] = Field(default_factory=lambda: ["cifar10"])
    target: str = "cifar100"


def context_from_json(data: Any) -> RunContext:
    """Build (once per distinct settings) the context for a server-driven run."""
    if isinstance(data, RunSettings):
        data = data.model_dump(exclude_none=True)
    values = StudioSettings(**(data if isinstance(data, dict) else {})).model_dump(exclude_none=True)
    return _context(json.dumps(values, sort_keys=True))


CONTEXT_FACTORY[:] = [context_from_json]
graph = build_graph(context_schema=StudioSettings)
