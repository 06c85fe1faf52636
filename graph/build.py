"""Wiring: nodes, then edges, then compile."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from lapt.graph import nodes
from lapt.graph.context import RunContext
from lapt.graph.evaluation_node import make_evaluation_node
from lapt.graph.routing import after_record, after_search
from lapt.graph.state import LaptState


def build_graph(checkpointer: Any = None, context_schema: type = RunContext) -> Any:
    """The LAPT state machine, compiled (optionally with a checkpointer for durable runs).

    learn_principles -> refine_space -> search -> evaluate -> record -> search ...; every ``adapt_every``
    evaluations record -> adapt -> refine_space; the budget (or an exhausted space) ends the run.
    ``context_schema`` is RunContext for programmatic runs; Studio passes JSON settings instead.
    """
    g = StateGraph(LaptState, context_schema=context_schema)
    g.add_node("learn_principles", nodes.learn_principles)
    g.add_node("refine_space", nodes.refine_space)
    g.add_node("search", nodes.search)
    g.add_node("evaluate", make_evaluation_node())
    g.add_node("record", nodes.record)
    g.add_node("adapt", nodes.adapt)
    g.add_node("finish", nodes.finish)

    g.add_edge(START, "learn_principles")
    g.add_edge("learn_principles", "refine_space")
    g.add_edge("refine_space", "search")
    g.add_conditional_edges("search", after_search, ["evaluate", "adapt", "finish"])
    g.add_edge("evaluate", "record")
    g.add_conditional_edges("record", after_record, ["search", "adapt", "finish"])
    g.add_edge("adapt", "refine_space")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer)
