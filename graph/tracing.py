"""Tracing a LAPT run: LangChain callbacks -> LangSmith-format runs in the run directory (and LangSmith).

What a trace holds (one tree per run, root ``lapt``):

* every graph step: the node runs (``learn_principles``, ``refine_space``, ``search``, ``evaluate``,
  ``record``, ``adapt``, ``finish``). The conditional edges (``after_search``, ``after_record``) are not
  written: their outcome is the next node's run, their input the state the node just returned, and
  they are a quarter of all runs;
* every evaluation: the ``evaluate_architecture`` tool run (architecture, index, round in; the metrics
  and the full trial out);
* every agent call: ``agent:learner`` / ``agent:refiner`` / ``agent:adapter`` (the facts the agent got,
  the validated answer or the error, tokens), holding the LLM reasoner's ``answer`` / ``repair_N`` runs
  and, inside those, each HTTP attempt as an ``llm`` run (messages sent, raw answer, token usage);
* every decision, as the outputs of a named run: ``decision:principles`` (a principle set),
  ``decision:mask`` (the mask with its rationale, size and whether the refiner's mask was used, kept or
  widened), ``decision:adaptation`` (the branch, improved or stalled, and the best value so far),
  ``decision:learner`` / ``decision:refiner`` / ``decision:search`` (agent outcomes and fallbacks) and
  ``decision:finish`` (why the run ended).

Graph-state digests: node runs receive the whole state. Writing it at every step would
make the trace grow with the square of the budget, so in node-run inputs (and in the ``principles``,
``masks`` and ``strategy`` values of node outputs) the growing lists are replaced by their size and the
latest version (``{"count": 31, "latest_version": 30}``). Nothing is lost: each trial is the output of
its tool run and each principle set and mask the output of its decision run.

Why not LangChain's ``LangChainTracer`` as it is: it builds a pydantic ``Run`` per callback and hands
the client whole states to copy and serialise: with :class:`~lapt.graph.trace_client.FileTraceClient` behind it, a
budget-100 offline graph took 3-4x the CPU time (``perf/trace_overhead.py --compare-stock``);
this tracer's target is under 10 %.
:class:`FileTracer` subclasses it (so LangChain sees a LangSmith tracer, adds no second one when
``LANGSMITH_TRACING`` is on, and ``@traceable`` / ``langsmith.trace`` code nested in a node finds its
parent through ``order_map``) but writes plain dicts straight to the :class:`~lapt.graph.trace_client.FileTraceClient`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import langsmith
from langchain_core.callbacks import CallbackManager
from langchain_core.load import dumpd
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import (
    ensure_config,
    get_callback_manager_for_config,
    patch_config,
    var_child_runnable_config,
)
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.utils.uuid import uuid7

from lapt.agents.adapter import AdaptInput
from lapt.agents.outcome import AgentOutcome
from lapt.graph.context import RunContext
from lapt.graph.state import LaptState
from lapt.graph.trace_client import (
    FileTraceClient,
    langsmith_endpoint,
    langsmith_project,
    live_client,
    live_tracing_requested,
)
from lapt.redaction import register_secret
from lapt.schemas import PrincipleSet
from lapt.spaces import SearchSpace
from lapt.trace_file import TRACE_FILE

ROOT_RUN_NAME = "lapt"
_STATE_KEYS = frozenset(LaptState.__annotations__)
_DIGESTED = frozenset({"principles", "masks", "trials", "decisions", "strategy", "messages"})
_NODE_ONLY_METADATA = frozenset({"langgraph_triggers", "langgraph_path", "langgraph_checkpoint_ns", "checkpoint_ns"})
_LLM_EXTRA = ("invocation_params", "options", "batch_size")  # what LangSmith keeps in an LLM run's extra
_DELTAS = frozenset({"trials", "decisions"})  # node outputs append these: what a node returns is new


# -- graph-state digests ------------------------------------------------------------------------------
def _is_state(value: Any) -> bool:
    return isinstance(value, dict) and not value.keys().isdisjoint(_DIGESTED) and value.keys() <= _STATE_KEYS


def _message(message: Any) -> Any:
    """A graph message as a trace value: tool calls proposed, or which call a result answers."""
    if isinstance(message, AIMessage):
        return {"type": "ai", "tool_calls": message.tool_calls}
    if isinstance(message, ToolMessage):
        return {"type": "tool", "tool_call_id": message.tool_call_id, "status": message.status}
    return message


def _tool_output(output: Any) -> Any:
    """An evaluation's result: the summary the tool returned and the full trial (its artifact)."""
    if isinstance(output, ToolMessage):
        return {"content": output.content, "artifact": output.artifact, "status": output.status}
    return output


def _digest(key: str, value: Any) -> Any:
    if key == "messages" and isinstance(value, list):
        return [_message(m) for m in value]
    if key == "strategy" and isinstance(value, dict):
        return {"seen": len(value.get("seen") or ()), "history": len(value.get("history") or ())}
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {"count": len(value)}
    last = value[-1] if value and isinstance(value[-1], dict) else None
    if last is not None and key == "masks":
        out["latest"] = {k: last.get(k) for k in ("version", "round", "size", "source")}
    elif last is not None and key == "principles":
        out["latest_version"] = last.get("version")
    return out


def digest_state(state: Mapping[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``state`` with its growing lists (except ``keep``) replaced by their size and latest version."""
    return {k: v if k in keep or k not in _DIGESTED else _digest(k, v) for k, v in state.items()}


def _chain_inputs(inputs: Any) -> dict[str, Any]:
    if _is_state(inputs):
        return digest_state(inputs)
    return inputs if isinstance(inputs, dict) else {"input": inputs}


def _chain_outputs(outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, AgentOutcome):
        return outcome_summary(outputs)
    if _is_state(outputs):
        return digest_state(outputs, keep=_DELTAS)
    return outputs if isinstance(outputs, dict) else {"output": outputs}


def outcome_summary(outcome: AgentOutcome[Any]) -> dict[str, Any]:
    """What an agent answered, for its run's outputs: the validated value or the error, and the cost."""
    reply = outcome.reply
    return {
        "ok": outcome.value is not None,
        "value": outcome.value,
        "error": reply.error if outcome.value is None else None,
        "saw_tasks": outcome.saw_tasks,
        "llm_calls": reply.calls,
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "attempts": reply.attempts,
    }


def _error_text(error: BaseException) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return (repr(error) + "\n\n" + "".join(lines[-6:])).strip()


_second: tuple[int, str, str] = (-1, "", "")  # the last whole second seen, as ISO and dotted-order text


def _now() -> tuple[str, str]:
    """Now as ISO 8601 (``2026-01-02T03:04:05.123456+00:00``) and as a dotted-order stamp
    (``20260102T030405123456Z``); the date part is formatted once per second (two calls per run)."""
    global _second
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _second  # one read: another thread may replace it, never half of it
    if seconds != cached[0]:
        t = dt.datetime.fromtimestamp(seconds, dt.UTC)
        cached = _second = (seconds, t.strftime("%Y-%m-%dT%H:%M:%S"), t.strftime("%Y%m%dT%H%M%S"))
    return f"{cached[1]}.{micros:06d}+00:00", f"{cached[2]}{micros:06d}Z"


# -- the tracer ----------------------------------------------------------------------------------
class FileTracer(LangChainTracer):
    """A LangChain tracer that writes LangSmith runs to a :class:`~lapt.graph.trace_client.FileTraceClient`.

    Each callback becomes one plain record (ids, ``trace_id`` and ``dotted_order`` computed as LangChain
    computes them); ``order_map`` is kept up to date so ``langsmith`` run trees can nest inside.
    """

    client: FileTraceClient

    def __init__(self, client: FileTraceClient | None = None, *, _routing: set[UUID] | None = None, **kwargs: Any):
        if not isinstance(client, FileTraceClient):
            raise TypeError("FileTracer needs a FileTraceClient")
        super().__init__(client=client, **kwargs)
        self._routing: set[UUID] = set() if _routing is None else _routing  # edges running now (not written)

    def copy_with_metadata_defaults(self, **kwargs: Any) -> FileTracer:
        """LangChain copies a tracer per step when a config carries ``configurable`` (a checkpointed run):
        the copy shares the run maps and the set of running edges."""
        copy = cast(FileTracer, super().copy_with_metadata_defaults(**kwargs))
        copy._routing = self._routing
        return copy

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _begin(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        run_type: str,
        name: str,
        inputs: dict[str, Any],
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        iso, stamp = _now()
        rid = str(run_id)
        own = stamp + rid
        parent = self.order_map.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None:
            # A dotted order ends with its run's id: the parent's id as text, without formatting a UUID.
            trace_id, dotted_order, parent_id = str(parent[0]), f"{parent[1]}.{own}", parent[1][-36:]
        else:  # a root, or a parent this tracer never saw: start a new tree, as LangChain does
            trace_id, dotted_order, parent_id = rid, own, None
        self.order_map[run_id] = (trace_id, dotted_order)  # type: ignore[assignment]
        meta = metadata or {}
        if meta.get("langgraph_node") not in (None, name):
            # Inside a node, LangGraph's bookkeeping is the node's: keep only which node and step.
            meta = {k: v for k, v in meta.items() if k not in _NODE_ONLY_METADATA}
        if self.tracing_metadata:
            meta = {**self.tracing_metadata, **meta}
        self.client.post(
            {
                "id": rid,
                "trace_id": trace_id,
                "dotted_order": dotted_order,
                "parent_run_id": parent_id,
                "run_type": run_type,
                "name": name,
                "start_time": iso,
                "tags": sorted({*(tags or ()), *self.tags}) if self.tags else (tags or []),
                "extra": {"metadata": meta, **extra} if extra else {"metadata": meta},
            },
            inputs,
        )

    def _end(self, run_id: UUID, **fields: Any) -> None:
        entry = self.order_map.pop(run_id, None)
        rid = entry[1][-36:] if entry is not None else str(run_id)
        self.client.patch(rid, {"end_time": _now()[0], **fields})

    # -- chains (graph, nodes, routing, agents, decisions) -------------------------------------------
    def on_chain_start(  # type: ignore[override]
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        run_type: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        name = name or _name(serialized)
        node = metadata.get("langgraph_node") if metadata else None
        if node is not None and node != name and _is_state(inputs):
            # A conditional edge (after_search, after_record): its outcome is the next node's run, and
            # its input the state the node just returned. Not written (a quarter of all runs); anything
            # it starts would nest under the node.
            parent = self.order_map.get(parent_run_id) if parent_run_id is not None else None
            if parent is not None:
                self.order_map[run_id] = parent
            self._routing.add(run_id)
            return
        self._begin(run_id, parent_run_id, run_type or "chain", name, _chain_inputs(inputs), tags, metadata)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        if run_id in self._routing:
            self._routing.discard(run_id)
            self.order_map.pop(run_id, None)
            return
        self._end(run_id, outputs=_chain_outputs(outputs))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        if run_id in self._routing:  # a failing edge fails its node, which records the error
            self._routing.discard(run_id)
            self.order_map.pop(run_id, None)
            return
        self._end(run_id, error=_error_text(error))

    # -- tools (evaluations) -------------------------------------------------------------------------
    def on_tool_start(  # type: ignore[override]
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        args = inputs if isinstance(inputs, dict) else {"input": input_str}
        self._begin(run_id, parent_run_id, "tool", name or _name(serialized), args, tags, metadata)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        self._end(run_id, outputs={"output": _tool_output(output)})

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        self._end(run_id, error=_error_text(error))

    # -- language models -------------------------------------------------------------------------------
    def on_chat_model_start(  # type: ignore[override]
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        inputs = {"messages": [[dumpd(m) for m in batch] for batch in messages]}
        extra: dict[str, Any] = {k: kwargs[k] for k in _LLM_EXTRA if k in kwargs}
        self._begin(run_id, parent_run_id, "llm", name or _name(serialized), inputs, tags, metadata, extra)

    def on_llm_start(  # type: ignore[override]
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        extra: dict[str, Any] = {k: kwargs[k] for k in _LLM_EXTRA if k in kwargs}
        self._begin(
            run_id, parent_run_id, "llm", name or _name(serialized), {"prompts": prompts}, tags, metadata, extra
        )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        generations = []
        usage: dict[str, int] = {}
        for batch in response.generations:
            row = []
            for gen in batch:
                item: dict[str, Any] = {"text": gen.text, "generation_info": gen.generation_info, "type": gen.type}
                message = getattr(gen, "message", None)
                if message is not None:
                    item["message"] = dumpd(message)
                    for key, value in (getattr(message, "usage_metadata", None) or {}).items():
                        if isinstance(value, int):
                            usage[key] = usage.get(key, 0) + value
                row.append(item)
            generations.append(row)
        outputs: dict[str, Any] = {"generations": generations, "llm_output": response.llm_output}
        extra = None
        if usage:
            outputs["usage_metadata"] = usage
            extra = {"metadata": {"usage_metadata": usage}}
        self._end(run_id, outputs=outputs, extra=extra)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        self._end(run_id, error=_error_text(error))

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:  # type: ignore[override]
        """Tokens are not traced one by one (the answer is in the run's outputs)."""

    def on_retry(self, retry_state: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """LangChain-level retries are not used: each attempt is its own run (see agents/llm.py)."""

    # -- retrievers (not used by lapt; traced for completeness) ----------------------------------------
    def on_retriever_start(  # type: ignore[override]
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._begin(run_id, parent_run_id, "retriever", name or _name(serialized), {"query": query}, tags, metadata)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        self._end(run_id, outputs={"documents": documents})

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        self._end(run_id, error=_error_text(error))


def _name(serialized: Mapping[str, Any] | None) -> str:
    if not serialized:
        return "Unnamed"
    if serialized.get("name"):
        return str(serialized["name"])
    ident = serialized.get("id")
    return str(ident[-1]) if isinstance(ident, list) and ident else "Unnamed"


# -- agent and decision runs ---------------------------------------------------------------------
def _brief(value: Any) -> Any:
    """An agent argument as a trace input: spaces by name, principle sets by version, sources by task."""
    if isinstance(value, SearchSpace):
        return value.name
    if isinstance(value, AdaptInput):
        return value.brief()
    if isinstance(value, PrincipleSet):
        return {"version": value.version, "source": value.source, "principles": len(value.principles)}
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "task") for v in value):
        return [v.task for v in value]
    return value


@contextlib.contextmanager
def chain_run(name: str, inputs: dict[str, Any], *, nest: bool = True) -> Iterator[dict[str, Any]]:
    """A chain run ``name`` inside the current LangChain run (a graph node); yields a dict for its outputs.

    With ``nest``, LangChain and ``langsmith`` code called in the block runs as its children. This is
    what ``RunnableLambda`` does, minus the signature inspection and config merging that made it cost
    ~2 ms a run; outside a traced graph it only runs the block.
    """
    config = var_child_runnable_config.get() or ensure_config()
    callbacks = config.get("callbacks")
    outputs: dict[str, Any] = {}
    if not callbacks:
        yield outputs
        return
    # Inside a node the config holds the node's child callback manager: use it as it is (configuring a
    # new one per run is what makes RunnableLambda slow).
    manager = callbacks if isinstance(callbacks, CallbackManager) else get_callback_manager_for_config(config)
    run = manager.on_chain_start(None, inputs, name=name)
    token = var_child_runnable_config.set(patch_config(config, callbacks=run.get_child())) if nest else None
    try:
        yield outputs
    except BaseException as error:
        run.on_chain_error(error)
        raise
    else:
        run.on_chain_end(outputs)
    finally:
        if token is not None:
            var_child_runnable_config.reset(token)


def traced_agent(name: str, agent: Callable[..., AgentOutcome[Any]]) -> Callable[..., AgentOutcome[Any]]:
    """``agent`` run as a chain run ``name``: its LLM calls nest inside; outputs = answer, error, cost."""

    def call(*args: Any, **kwargs: Any) -> AgentOutcome[Any]:
        inputs = {"args": [_brief(a) for a in args], **{k: _brief(v) for k, v in kwargs.items()}}
        with chain_run(name, inputs) as outputs:
            outcome = agent(*args, **kwargs)
            outputs |= outcome_summary(outcome)
        return outcome

    return call


def decision_run_name(kind: str, payload: Mapping[str, Any]) -> str:
    """``decision:principles``, ``decision:mask``, ``decision:adaptation``, ``decision:<agent>``..."""
    if kind != "decision":
        return f"decision:{kind}"
    agent = str(payload.get("agent") or "agent")
    return "decision:adaptation" if agent == "adapter" else f"decision:{agent}"


def record_decision(kind: str, payload: Mapping[str, Any]) -> None:
    """Record one decision as a named chain run whose outputs are the decision (inside the current node).

    Decisions are leaves, so they go straight to the file tracers of the current callback manager
    (there are ~1.5 per evaluation; the general callback path cost more than the rest of the trace).
    """
    config = var_child_runnable_config.get()
    manager = config.get("callbacks") if config else None
    if not isinstance(manager, CallbackManager):
        return  # not inside a traced graph step
    name = decision_run_name(kind, payload)
    for tracer in manager.handlers:
        if isinstance(tracer, FileTracer):
            run_id = uuid7()
            tracer.on_chain_start(
                None,
                {"event": kind},
                run_id=run_id,
                parent_run_id=manager.parent_run_id,
                tags=manager.tags,
                metadata=manager.metadata,
                name=name,
            )
            tracer.on_chain_end(dict(payload), run_id=run_id)


# -- a traced run ----------------------------------------------------------------------------------
class TraceSession:
    """Everything one traced run needs: the file client, the tracer, live forwarding, the cleanup.

    Usage (see :func:`lapt.api.execute`)::

        session = TraceSession(run_dir, metadata={...}, secrets=[api_key])
        session.instrument(ctx)
        session.start()
        try:
            graph.invoke(..., config={..., **session.config()})
        finally:
            session.close()  # session.counts: runs written, unfinished, bytes

    Args:
        run_dir: the run directory (``trace.jsonl`` goes there).
        metadata: put on the root run (lapt version, settings).
        secrets: secret values to keep out of the trace (the environment's are always kept out).
        live: also send runs to LangSmith; default: when ``LANGSMITH_TRACING`` is true.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        metadata: Mapping[str, Any] | None = None,
        secrets: Sequence[str] = (),
        live: bool | None = None,
    ):
        for secret in secrets:
            register_secret(secret)
        self.live_errors: list[str] = []
        live = live_tracing_requested() if live is None else live
        forward = live_client(self.live_errors) if live else None
        self.project = langsmith_project()
        self.client = FileTraceClient(
            Path(run_dir) / TRACE_FILE, secrets=secrets, forward=forward, project=self.project, root_metadata=metadata
        )
        self.tracer = FileTracer(client=self.client, project_name=self.project)
        self.counts: dict[str, int] = {}
        self._stack = contextlib.ExitStack()

    def instrument(self, ctx: RunContext) -> None:
        """Trace the agents of ``ctx`` as ``agent:*`` runs and its decision events as ``decision:*`` runs."""
        ctx.learner = traced_agent("agent:learner", ctx.learner)
        ctx.refiner = traced_agent("agent:refiner", ctx.refiner)
        ctx.adapter = traced_agent("agent:adapter", ctx.adapter)
        emit = ctx.on_event

        def on_event(kind: str, payload: dict[str, Any]) -> None:
            emit(kind, payload)
            record_decision(kind, payload)

        ctx.on_event = on_event

    def config(self) -> dict[str, Any]:
        """Keys to add to the ``graph.invoke`` config: this tracer, and the root run's name."""
        return {"callbacks": [self.tracer], "run_name": ROOT_RUN_NAME}

    def start(self) -> None:
        """Route langsmith-native runs (``langsmith.trace`` in the LLM reasoner) to the same file."""
        self._stack.enter_context(
            langsmith.tracing_context(client=self.client, enabled=True, project_name=self.project)
        )

    def close(self) -> None:
        """Write the file in its final form (one line per run) and finish live forwarding."""
        self._stack.close()
        self.counts = self.client.finish()
        problem = self.live_errors[0] if self.live_errors else None
        if self.client.forward_unfinished:
            problem = problem or "the endpoint did not take every run within 5 s"
        if problem is not None:
            where = self.client.forward_url or langsmith_endpoint()
            print(
                f"lapt: warning: live tracing to {where} failed ({problem}); the trace is in "
                f"{self.client.path} (`lapt trace upload` sends it later)",
                file=sys.stderr,
            )

    def __enter__(self) -> TraceSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_trace(run_dir: Path | None, settings: Any, llm: Any = None) -> TraceSession | None:
    """The trace session of a run writing to ``run_dir`` (None: no run directory, nothing to write to).

    The root run's metadata records the lapt version and the run's settings; the LLM's API key (if
    any) is registered as a secret so that no trace line can hold it.
    """
    if run_dir is None:
        return None
    from lapt import __version__

    key = getattr(llm, "api_key", None)
    secrets = [key.get_secret_value()] if key is not None else []
    metadata = {"lapt_version": __version__, "settings": settings.model_dump(mode="json")}
    return TraceSession(run_dir, metadata=metadata, secrets=secrets)


def tracer_config(session: TraceSession | None) -> dict[str, Any]:
    """``session.config()``, or nothing without a session (so a config literal can splice it in)."""
    return session.config() if session is not None else {}
