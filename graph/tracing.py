"""Tracing a LAPT run: LangChain callbacks -> LangSmith-format runs in the run directory (and LangSmith).

What a trace holds (one tree per run, root ``lapt``):

* every graph step: the node runs (``learn_principles``, ``refine_space``, ``search``, ``evaluate``,
  ``record``, ``adapt``, ``finish``). A node run's outputs are the node's update, so the decisions are
  there: the principle sets (``learn_principles``, ``adapt``), the mask with its rationale, size and
  source (``refine_space``; ``search`` when it widens an exhausted region), the adaptation branch
  (``adapt``), each agent decision with its fallback and cost (``decisions``) and why the run ended
  (``finish``). The conditional edges (``after_search``, ``after_record``) are not written: their
  outcome is the next node's run;
* every evaluation: the ``evaluate_architecture`` tool run (architecture and position in, the trial out);
* every agent call: ``agent:learner`` / ``agent:refiner`` / ``agent:adapter`` (the facts the agent got,
  the validated answer or the error, tokens), holding the LLM reasoner's ``answer`` / ``repair_N`` runs
  and, inside those, each HTTP attempt as an ``llm`` run (messages sent, raw answer, token usage).

Size: a node run's inputs are the state it was given, digested to its counters and versions (the facts
are in the outputs of the step that made them), and LangGraph's bookkeeping metadata is kept on the
root run only, so a trace grows by about the same amount per evaluation however long the run.

Why not LangChain's ``LangChainTracer`` as it is: it builds a pydantic ``Run`` per callback and hands
the client whole states to copy and serialise (3-4x the CPU time of a budget-100 offline graph,
``perf/trace_overhead.py --compare-stock``); this tracer's target is under 10 %.
:class:`FileTracer` subclasses it (so LangChain sees a LangSmith tracer, adds no second one when
``LANGSMITH_TRACING`` is on, and ``@traceable`` / ``langsmith.trace`` code nested in a node finds its
parent through ``order_map``) but writes plain dicts straight to the trace writer.
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
from langchain_core.messages import ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import (
    ensure_config,
    get_callback_manager_for_config,
    patch_config,
    var_child_runnable_config,
)
from langchain_core.tracers.langchain import LangChainTracer

from lapt.agents.adapter import AdaptInput
from lapt.agents.outcome import AgentOutcome
from lapt.graph.state import LaptState
from lapt.graph.trace_client import (
    FileTraceClient,
    langsmith_endpoint,
    langsmith_project,
    live_client,
    live_tracing_requested,
)
from lapt.llm.redaction import register_secret
from lapt.runs.trace_file import TRACE_FILE
from lapt.schemas import PrincipleSet
from lapt.spaces import SearchSpace
from lapt.transfer.masks import MaskBase

ROOT_RUN_NAME = "lapt"
_STATE_KEYS = frozenset(LaptState.__annotations__)
_MARKERS = frozenset({"principles", "mask", "trials", "decisions", "search", "pending", "n_trials"})
# LangGraph's bookkeeping: kept on the root run; a node run keeps only which node and step it was.
_ROOT_ONLY_METADATA = frozenset(
    {"langgraph_triggers", "langgraph_path", "langgraph_checkpoint_ns", "checkpoint_ns", "thread_id", "ls_integration"}
)
_LLM_EXTRA = ("invocation_params", "options", "batch_size")  # what LangSmith keeps in an LLM run's extra


# -- graph-state digests ------------------------------------------------------------------------------
def _is_state(value: Any) -> bool:
    return isinstance(value, dict) and not value.keys().isdisjoint(_MARKERS) and value.keys() <= _STATE_KEYS


def _compact(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record without its empty fields (``None``, ``{}``, ``[]``)."""
    return {k: v for k, v in record.items() if v is not None and v != {} and v != []}


# The tool run's inputs already say these, and the root run says the task.
_TOOL_ARGS = frozenset({"arch", "index", "round", "mask_version", "task"})


def _tool_output(output: Any) -> Any:
    """An evaluation's result: the trial (the tool's artifact) without its empty fields and without what
    the run's inputs already hold (a reader merges the two, see ``lapt trace show``)."""
    if isinstance(output, ToolMessage):
        if isinstance(output.artifact, dict):
            trial = {k: v for k, v in _compact(output.artifact).items() if k not in _TOOL_ARGS}
            if trial.get("fitness") == trial.get("val"):
                trial.pop("fitness", None)  # the usual case: a reader takes val (see lapt trace show)
            if isinstance(trial.get("cost_s"), float):
                trial["cost_s"] = float(f"{trial['cost_s']:.4g}")
            return {"trial": trial} if output.status == "success" else {"trial": trial, "status": output.status}
        return {"content": output.content, "status": output.status}
    return output


_INPUT_COUNTERS = ("n_trials", "round", "since_adapt", "branch", "done")


def digest_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A node's input state as where the run stood: its counters and the versions in force.

    The facts themselves (trials, decisions, principle sets, masks) are in the outputs of the steps that
    made them, so repeating any of them here would make the trace grow faster than the run.
    """
    out: dict[str, Any] = {k: state[k] for k in _INPUT_COUNTERS if k in state}
    principles = state.get("principles") or ()
    if principles:
        out["principles"] = [p.get("version") for p in principles]
    mask = state.get("mask")
    if mask is not None:
        out["mask"] = mask.get("version")
    if state.get("pending"):
        out["pending"] = [p.get("index") for p in state["pending"]]
    return out


def _lean_principles(pset: Mapping[str, Any]) -> dict[str, Any]:
    """A principle set as a node's output: the principles without their evidence text, which
    ``principles/vN.json`` holds (a long run adapts hundreds of times)."""
    principles = [{k: v for k, v in p.items() if k != "evidence"} for p in pset.get("principles") or ()]
    return {**pset, "principles": principles}


def _lean_decision(decision: Mapping[str, Any]) -> dict[str, Any]:
    """A decision without the fields that say nothing (no error, no LLM call): the file has them all."""
    return {k: v for k, v in decision.items() if (v is not None and v != [] and v != 0) or k in ("seq", "ok")}


def digest_update(update: Mapping[str, Any]) -> dict[str, Any]:
    """A node's update for its run's outputs: the new facts whole, the rest as counters.

    Principle sets, masks and decisions are the decisions of the run: they stay whole. Trials are the
    outputs of their tool runs, so the evaluation node lists their indices; proposals list their
    architectures.
    """
    out: dict[str, Any] = {}
    for key, value in update.items():
        if value in ([], 0) and key in ("pending", "empty_asks"):
            continue  # the usual: nothing waiting, nothing exhausted
        if key == "trials":
            out[key] = [t.get("index") for t in value or ()]
        elif key == "pending":
            out[key] = [p.get("index") for p in value or ()]  # each has its tool run, architecture in its inputs
        elif key == "principles":
            out[key] = [_lean_principles(p) for p in value or ()]
        elif key == "search":
            continue  # the strategy's working state: no decision, and the next checkpoint holds it
        elif key == "decisions":
            out[key] = [_lean_decision(d) for d in value or ()]
        else:
            out[key] = value
    return out


def _chain_inputs(inputs: Any) -> dict[str, Any]:
    if _is_state(inputs):
        return digest_state(inputs)
    return inputs if isinstance(inputs, dict) else {"input": inputs}


def _chain_outputs(outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, AgentOutcome):
        return outcome_summary(outputs)
    if isinstance(outputs, dict) and outputs.keys() <= _STATE_KEYS:
        return digest_update(outputs)
    return outputs if isinstance(outputs, dict) else {"output": outputs}


def outcome_summary(outcome: AgentOutcome[Any]) -> dict[str, Any]:
    """What an agent answered, for its run's outputs: the validated value or the error, and the cost."""
    reply = outcome.reply
    value: Any = outcome.value
    if isinstance(value, PrincipleSet):  # whole in the output of the node that took it (learn/adapt)
        value = {"version": value.version, "source": value.source, "principles": len(value.principles)}
    elif isinstance(value, MaskBase):  # whole, in canonical order and with its rationale, in the node's output
        value = "the mask in the refine_space output"
    return {
        "ok": outcome.value is not None,
        "value": value,
        "error": reply.error if outcome.value is None else None,
        "saw_tasks": outcome.saw_tasks,
        "llm_calls": reply.calls,
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "attempts": reply.attempts,
        "changes": reply.changes,
        "support": reply.support,
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
        tags = tags or []
        if parent is not None:
            # LangGraph's bookkeeping is the same in every step: the root has it, a node keeps the step it
            # was (its name is the node's; the step tag repeats the step), and what runs inside a node
            # (tools, agents, LLM calls) has the node for that.
            meta = {k: v for k, v in meta.items() if k not in _ROOT_ONLY_METADATA}
            if meta.get("langgraph_node") == name:
                meta.pop("langgraph_node")
            tags = [t for t in tags if not t.startswith(("graph:step:", "seq:step:"))]
            if "." in parent[1]:
                meta = {k: v for k, v in meta.items() if not k.startswith("langgraph_")}
        if self.tracing_metadata:
            meta = {**self.tracing_metadata, **meta}
        record: dict[str, Any] = {
            "id": rid,
            "trace_id": trace_id,
            "dotted_order": dotted_order,
            "parent_run_id": parent_id,
            "run_type": run_type,
            "name": name,
            "start_time": iso,
        }
        tags = sorted({*tags, *self.tags}) if self.tags else tags
        if tags:  # empty tags and metadata are left out: most runs inside a node have neither
            record["tags"] = tags
        if meta or extra:
            record["extra"] = {"metadata": meta, **(extra or {})}
        self.client.post(record, inputs)

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
                    if getattr(message, "content", None) == gen.text:
                        # Each answer once: the text is the message's content (a 200 MB answer was stored twice).
                        del item["text"]
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
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) and "rationale" in v for v in value):
        return {"masks": len(value)}  # regions tried: each is in the refine_space output that made it
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
    """``agent`` run as a chain run ``name``: its LLM calls nest inside; outputs = answer, error, cost.

    Outside a traced graph (no callbacks in the current config) the agent is called as it is.
    """

    def call(*args: Any, **kwargs: Any) -> AgentOutcome[Any]:
        inputs = {"args": [_brief(a) for a in args], **{k: _brief(v) for k, v in kwargs.items()}}
        with chain_run(name, inputs) as outputs:
            outcome = agent(*args, **kwargs)
            outputs |= outcome_summary(outcome)
        return outcome

    return call


# -- a traced run ----------------------------------------------------------------------------------
class TraceSession:
    """Everything one traced run needs: the file client, the tracer, live forwarding, the cleanup.

    Usage (see :mod:`lapt.graph.run`)::

        session = TraceSession(run_dir, metadata={...}, secrets=[api_key])
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
        problem = self.client.forward_problem(self.live_errors[0] if self.live_errors else None)
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
    from lapt.version import __version__

    key = getattr(llm, "api_key", None)
    secrets = [key.get_secret_value()] if key is not None else []
    metadata = {"lapt_version": __version__, "settings": settings.model_dump(mode="json")}
    return TraceSession(run_dir, metadata=metadata, secrets=secrets)


def tracer_config(session: TraceSession | None) -> dict[str, Any]:
    """``session.config()``, or nothing without a session (so a config literal can splice it in)."""
    return session.config() if session is not None else {}
