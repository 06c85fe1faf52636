"""The evaluation tool node: each evaluation is a LangChain tool run (``evaluate_architecture``).

The search node emits an AIMessage whose tool calls name the candidates; LangGraph's ToolNode runs the
tool for each, so every evaluation appears in traces as a ``tool`` run with its architecture, task and
metrics.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import tool
from langgraph.prebuilt import ToolNode
from langgraph.runtime import get_runtime

from lapt.graph.context import RunContext, context_of
from lapt.tools.evaluation import evaluate_trial

TOOL_NAME = "evaluate_architecture"


@tool(TOOL_NAME, response_format="content_and_artifact")
def evaluate_architecture(arch: str, index: int, round: int) -> tuple[str, dict[str, Any]]:
    """Evaluate one architecture (benchmark string) on the run's target task; returns its metrics."""
    # The run context comes from the graph runtime (not a tool argument, so it never enters a trace).
    ctx: RunContext = context_of(get_runtime(RunContext))
    trial = evaluate_trial(ctx.evaluator, ctx.space, arch, ctx.settings.target, index, round)
    summary = {
        "arch": trial.arch,
        "task": trial.task,
        "status": trial.status.value,
        "val": trial.val,
        "test": trial.test,
    }
    if trial.error:
        summary["error"] = trial.error
    return json.dumps(summary), trial.model_dump(mode="json")


def make_evaluation_node() -> ToolNode:
    """A ToolNode that runs ``evaluate_architecture``; tool errors become failed trials, not crashes."""
    return ToolNode([evaluate_architecture], handle_tool_errors=True)
