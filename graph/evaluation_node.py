"""The evaluation tool node: each evaluation is a LangChain tool run (``evaluate_architecture``).

The search node emits an AIMessage whose tool calls name the candidates; LangGraph's ToolNode runs the
tool for each (in parallel for a batch), so every evaluation appears in traces as a ``tool`` run with
its architecture and position in, the trial out.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool
from langgraph.prebuilt import ToolNode
from langgraph.runtime import get_runtime

from lapt.graph.context import ContextResolver
from lapt.tools.evaluation import evaluate_trial

TOOL_NAME = "evaluate_architecture"


def make_evaluation_node(resolve: ContextResolver) -> ToolNode:
    """A ToolNode running ``evaluate_architecture``; tool errors become failed trials, not crashes.

    ``resolve`` turns the graph's runtime context into the run context (see :func:`lapt.graph.build`):
    the context reaches the tool through the runtime, never as a tool argument, so it never enters a trace.
    """

    def evaluate_architecture(arch: str, index: int, round: int, mask_version: int) -> tuple[str, dict[str, Any]]:
        """Evaluate one architecture (benchmark string) on the run's target task; returns its metrics."""
        ctx = resolve(get_runtime().context)
        trial = evaluate_trial(ctx.evaluator, ctx.space, arch, ctx.settings.target, index, round, mask_version)
        summary = f"{trial.status.value}: val={trial.val} test={trial.test}"
        if trial.error:
            summary += f" error={trial.error}"
        return summary, trial.model_dump(mode="json")

    tool = StructuredTool.from_function(evaluate_architecture, name=TOOL_NAME, response_format="content_and_artifact")
    return ToolNode([tool], handle_tool_errors=True)
