"""Wiring: nodes, then edges, then compile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from lapt.graph import nodes, routing
from lapt.graph.context import ContextResolver, RunContext, given_context
from lapt.graph.evaluation_node import make_evaluation_node
from lapt.graph.state import LaptState

Node = Callable[[LaptState, RunContext], dict[str, Any]]


def _bind(node: Node, resolve: ContextResolver) -> Any:
    """A LangGraph node calling ``node(state, context)`` with the run context of its runtime."""

    def run(state: LaptState, *, runtime: Runtime[Any]) -> dict[str, Any]:
        return node(state, resolve(runtime.context))

    run.__name__ = run.__qualname__ = node.__name__
    run.__doc__ = node.__doc__
    return run


def build_graph(
    checkpointer: Any = None, context_schema: type = RunContext, resolve: ContextResolver | None = None
) -> Any:
    """The LAPT state machine, compiled (optionally with a checkpointer for durable runs).

    learn_principles -> refine_space -> search -> evaluate -> search ...; every ``adapt_every`` evaluations
    evaluate -> adapt -> refine_space; the budget (or an exhausted space) ends the run.
    ``context_schema`` and ``resolve`` default to a RunContext passed as it is; LangGraph Studio passes JSON
    settings and a resolver that builds the context from them (:mod:`lapt.graph.studio`).
    """
    resolve = resolve or given_context

    def settings_of(runtime: Runtime[Any]) -> Any:
        return resolve(runtime.context).settings

    g = StateGraph(LaptState, context_schema=context_schema)
    g.add_node("learn_principles", _bind(nodes.learn_principles, resolve))
    g.add_node("refine_space", _bind(nodes.refine_space, resolve))
    g.add_node("search", _bind(nodes.search, resolve))
    g.add_node("evaluate", make_evaluation_node(resolve))
    g.add_node("adapt", _bind(nodes.adapt, resolve))
    g.add_node("finish", _bind(nodes.finish, resolve))

    def after_search(state: LaptState, runtime: Runtime[Any]) -> str:
        return routing.after_search(state, settings_of(runtime))

    def after_evaluate(state: LaptState, runtime: Runtime[Any]) -> str:
        return routing.after_evaluate(state, settings_of(runtime))

    g.add_edge(START, "learn_principles")
    g.add_conditional_edges("learn_principles", routing.after_learn, ["refine_space", "finish"])
    g.add_edge("refine_space", "search")
    g.add_conditional_edges("search", after_search, ["evaluate", "adapt", "finish"])
    g.add_conditional_edges("evaluate", after_evaluate, ["search", "adapt", "finish"])
    g.add_edge("adapt", "refine_space")
    g.add_edge("finish", END)
    return g.compile(checkpointer=checkpointer)
