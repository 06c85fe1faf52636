"""Entry point for LangGraph Studio and ``langgraph dev`` (see langgraph.json).

A server passes the run context as JSON: the fields of :class:`lapt.runs.config.RunSettings`, e.g.
``{"space": "nb201", "sources": ["cifar10"], "target": "cifar100", "budget": 20}``. The graph is built
with a resolver that turns those settings into a RunContext (offline reasoner, table evaluator, kept in
memory), once per distinct settings. Like the CLI, this module is a composition root. Runs started here
keep their record in the server's memory: to resume a run after a restart, use ``lapt run --run-dir``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import Field

from lapt.graph.assembly import build_agents, build_context, make_reasoner, prompts_for, search_session
from lapt.graph.build import build_graph
from lapt.graph.context import RunContext
from lapt.runs.config import RunSettings, resolve_settings
from lapt.tools.executors import make_evaluation


class StudioSettings(RunSettings):
    """Run settings with defaults for every field, so Studio can start a run from an empty form."""

    space: str = "nb201"
    sources: list[str] = Field(default_factory=lambda: ["cifar10"])
    target: str = "cifar100"


@functools.lru_cache(maxsize=8)
def _context(settings_json: str) -> RunContext:
    settings, space = resolve_settings(**json.loads(settings_json))
    evaluator, _executor = make_evaluation(settings)  # in-process: nothing to close
    agents = build_agents(make_reasoner(), prompts_for(settings), settings.top_k)
    return build_context(settings, space, evaluator=evaluator, agents=agents, search=search_session(settings, space))


def context_from_json(data: Any) -> RunContext:
    """The run context for server-driven settings (a RunContext passes through)."""
    if isinstance(data, RunContext):
        return data
    if isinstance(data, RunSettings):
        data = data.model_dump(exclude_none=True)
    values = StudioSettings(**(data if isinstance(data, dict) else {})).model_dump(exclude_none=True)
    return _context(json.dumps(values, sort_keys=True))


graph = build_graph(context_schema=StudioSettings, resolve=context_from_json)
