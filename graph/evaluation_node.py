"""The evaluation tool node: each evaluation is a run of the LangChain tool ``evaluate_architecture``.

The search node proposes candidates (``pending``); this node calls the tool once per proposal, with
the node's config, so every evaluation appears in traces as a ``tool`` run (architecture and position
in, the trial out) under the ``evaluate`` node run, and then records the batch: the trials, in index
order, are the node's update and the search session learns them. One proposal is evaluated in this
thread, a batch in parallel (one thread per proposal: the executor behind the evaluator decides how many
really run at once). LangGraph's prebuilt ToolNode would start a thread even for a single call, which
costs more than the table lookup it runs; and proposals and trials stay plain JSON in the state instead
of chat messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_executor_for_config
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.runtime import Runtime

from lapt.graph.context import ContextResolver
from lapt.graph.state import LaptState
from lapt.schemas import Status, Trial
from lapt.tools.evaluation import evaluate_trial

TOOL_NAME = "evaluate_architecture"


def make_evaluation_tool(resolve: ContextResolver) -> BaseTool:
    """The ``evaluate_architecture`` tool; the run context comes from the graph runtime, never as an
    argument, so it never enters a trace."""
    from langgraph.runtime import get_runtime

    def evaluate_architecture(arch: str, index: int, round: int, mask_version: int) -> tuple[str, dict[str, Any]]:
        """Evaluate one architecture (benchmark string) on the run's target task; returns its metrics."""
        ctx = resolve(get_runtime().context)
        trial = evaluate_trial(ctx.evaluator, ctx.space, arch, ctx.settings.target, index, round, mask_version)
        summary = f"{trial.status.value}: val={trial.val} test={trial.test}"
        if trial.error:
            summary += f" error={trial.error}"
        return summary, trial.model_dump(mode="json")

    return StructuredTool.from_function(evaluate_architecture, name=TOOL_NAME, response_format="content_and_artifact")


def make_evaluation_node(resolve: ContextResolver) -> Any:
    """The ``evaluate`` node: one tool run per pending proposal; a tool that raises is a failed trial."""
    tool = make_evaluation_tool(resolve)

    def evaluate(state: LaptState, config: RunnableConfig, *, runtime: Runtime[Any]) -> dict[str, Any]:
        ctx = resolve(runtime.context)
        session = ctx.search
        session.sync(state)
        pending = list(state.get("pending") or [])
        target = ctx.settings.target
        if len(pending) == 1:
            trials = [_run(tool, pending[0], state, target, config)]
        else:
            with get_executor_for_config({**config, "max_concurrency": len(pending) or 1}) as pool:
                trials = list(pool.map(lambda p: _run(tool, p, state, target, config), pending))
        trials.sort(key=lambda t: t["index"])
        outside = {p["index"] for p in pending if p.get("outside")}
        for t in trials:
            if t["index"] in outside:  # the search stepped outside the refined region for this one
                t["extras"] = {**(t.get("extras") or {}), "outside_region": True}
        session.tell(trials)
        return {
            "trials": trials,
            "n_trials": state.get("n_trials", 0) + len(trials),
            "search": session.state(),
            "pending": [],
            "since_adapt": state.get("since_adapt", 0) + len(trials),
        }

    return evaluate


def _run(tool: BaseTool, p: Mapping[str, Any], state: LaptState, target: str, config: RunnableConfig) -> dict[str, Any]:
    """One tool run: the trial it returned, or a failed trial saying why the tool itself failed."""
    call = {
        "name": TOOL_NAME,
        "args": {
            "arch": p["arch"],
            "index": p["index"],
            "round": state.get("round", 0),
            "mask_version": p["mask_version"],
        },
        "id": p["id"],
        "type": "tool_call",
    }
    try:
        message = tool.invoke(call, config)
    except Exception as exc:  # failure-is-data boundary: the evaluation failed, the run goes on
        error = f"{type(exc).__name__}: {exc}"[:500]
    else:
        if isinstance(message, ToolMessage) and isinstance(message.artifact, dict):
            return dict(message.artifact)
        error = "the evaluation returned no result"
    trial = Trial(
        index=p["index"],
        arch=p["arch"],
        task=target,
        status=Status.FAILED,
        round=state.get("round", 0),
        mask_version=p["mask_version"],
        error=error,
    )
    return trial.model_dump(mode="json")
