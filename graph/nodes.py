"""Graph nodes: learn_principles -> refine_space -> search -> evaluate -> record -> (adapt ->) ...

Every node reads the run context for its dependencies and returns only the state keys it changes.
Agents that fail to give a valid answer never stop the run: the previous mask (or the full space at
the start) is kept and the reason is recorded as a decision.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.runtime import Runtime

from lapt.agents.outcome import AgentOutcome
from lapt.graph.context import RunContext, context_of
from lapt.graph.evaluation_node import TOOL_NAME
from lapt.graph.state import LaptState
from lapt.masks import from_spec, full_mask, mask_model, to_spec
from lapt.metrics import incumbent_curve
from lapt.schemas import PrincipleSet, Status, Trial
from lapt.strategies import make_strategy


def _decision(agent: str, outcome: AgentOutcome[Any] | None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"agent": agent, **extra}
    if outcome is not None:
        reply = outcome.reply
        entry |= {
            "ok": outcome.value is not None,
            "error": reply.error if outcome.value is None else None,
            "saw_tasks": outcome.saw_tasks,
            "llm_calls": reply.calls,
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "attempts": reply.attempts,
        }
    return entry


def _usage(state: LaptState, outcome: AgentOutcome[Any]) -> dict[str, int]:
    u = dict(state.get("usage") or {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0})
    u["llm_calls"] += outcome.reply.calls
    u["input_tokens"] += outcome.reply.input_tokens
    u["output_tokens"] += outcome.reply.output_tokens
    return u


def _strategy(ctx: RunContext, state: LaptState) -> Any:
    s = ctx.settings
    strategy = make_strategy(s.strategy, ctx.space, s.seed, population=s.population, tournament=s.tournament)
    if state.get("strategy"):
        strategy.load_state_dict(state["strategy"])
    return strategy


def _trials(state: LaptState) -> list[Trial]:
    return [Trial.model_validate(t) for t in state.get("trials", [])]


def _best(trials: list[Trial]) -> Trial | None:
    curve = incumbent_curve(trials)
    return curve[-1] if curve else None


# -- nodes -----------------------------------------------------------------------------------------
def learn_principles(state: LaptState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Learn principles from the source task(s), or start from the given ones."""
    ctx = context_of(runtime)
    if ctx.initial_principles is not None:
        pset = ctx.initial_principles
        ctx.on_event("principles", pset.model_dump())
        given = {"agent": "learner", "ok": True, "note": f"given: {pset.source}", "saw_tasks": []}
        ctx.on_event("decision", given)
        return {"principles": [pset.model_dump()], "decisions": [given]}
    outcome = ctx.learner(ctx.space, ctx.sources())
    update: dict[str, Any] = {"usage": _usage(state, outcome), "principles": []}
    if outcome.value is not None:
        update["principles"] = [outcome.value.model_dump()]
        ctx.on_event("principles", outcome.value.model_dump())
    decision = _decision(
        "learner", outcome, note="no principles: the search starts in the full space" if outcome.value is None else ""
    )
    ctx.on_event("decision", decision)
    return update | {"decisions": [decision]}


def refine_space(state: LaptState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Turn the latest principles into a mask; keep the previous mask if the refiner fails."""
    ctx = context_of(runtime)
    s = ctx.settings
    masks = list(state.get("masks") or [])
    principles = state.get("principles") or []
    round_ = state.get("round", 0)
    previous = masks[-1]["mask"] if masks else None
    outcome = None
    if principles:
        pset = PrincipleSet.model_validate(principles[-1])
        branch = state.get("branch")
        context = "Initial refinement from the transferred principles."
        if branch == "stalled" and previous is not None:
            context = (
                f"The previous refined space {json.dumps(previous)} stopped yielding better architectures: "
                "propose other ops where the principles allow."
            )
        elif branch == "improved":
            context = "The principles were just updated with results from the target task."
        outcome = ctx.refiner(ctx.space, pset, s.max_ops, s.target, context)
    if outcome is not None and outcome.value is not None:
        mask = outcome.value
        source, note = "refiner", ""
    else:
        why = outcome.reply.error if outcome is not None else "no principles"
        if previous is not None:
            mask = mask_model(ctx.space)(**previous)
            source, note = "kept", f"refiner gave no valid mask ({why}); kept the previous one"
        else:
            mask = full_mask(ctx.space, rationale=f"full space: {why}")
            source, note = "full", f"no valid mask ({why}); searching the full space"
    spec = to_spec(ctx.space, mask)
    record = {
        "version": len(masks),
        "round": round_,
        "mask": from_spec(ctx.space, spec, mask.rationale).model_dump(),
        "size": ctx.space.size(spec),
        "source": source,
        "note": note,
    }
    ctx.on_event("mask", record)
    decision = _decision("refiner", outcome, source=source, note=note, size=record["size"])
    ctx.on_event("decision", decision)
    update: dict[str, Any] = {"masks": [*masks, record], "decisions": [decision]}
    if outcome is not None:
        update["usage"] = _usage(state, outcome)
    return update


def search(state: LaptState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Ask the strategy for the next candidates inside the current mask and request their evaluation."""
    ctx = context_of(runtime)
    s = ctx.settings
    used = len(state.get("trials", []))
    n = min(s.batch_size, s.budget - used)
    if s.adapt and s.adapt_every:
        n = min(n, s.adapt_every - state.get("since_adapt", 0)) or 1
    strategy = _strategy(ctx, state)
    mask_spec = to_spec(ctx.space, mask_model(ctx.space)(**state["masks"][-1]["mask"]))
    genotypes = strategy.ask(mask_spec, n)
    update: dict[str, Any] = {}
    if not genotypes and (not s.adapt or state.get("empty_asks", 0) >= 1 or not state.get("principles")):
        # The region is exhausted and adapting did not (or cannot) open a new one: rather than end the run
        # with budget left, widen to the full space and say so.
        full = ctx.space.full_mask()
        if mask_spec != full:
            masks = state["masks"]
            record = {
                "version": len(masks),
                "round": state.get("round", 0),
                "mask": from_spec(ctx.space, full, "region exhausted: widened to the full space").model_dump(),
                "size": ctx.space.size(full),
                "source": "widened",
                "note": f"the refined region ({masks[-1]['size']} architectures) is exhausted",
            }
            ctx.on_event("mask", record)
            decision = {"agent": "search", "ok": True, "source": "widened", "note": record["note"]}
            ctx.on_event("decision", decision)
            update |= {"masks": [*masks, record], "decisions": [decision]}
            genotypes = strategy.ask(full, n)
    calls = [
        {
            "name": TOOL_NAME,
            "args": {"arch": ctx.space.to_str(g), "index": used + i, "round": state.get("round", 0)},
            "id": f"eval-{used + i}",
            "type": "tool_call",
        }
        for i, g in enumerate(genotypes)
    ]
    update |= {"strategy": strategy.state_dict(), "messages": [AIMessage(content="", tool_calls=calls)]}
    update["empty_asks"] = 0 if calls else state.get("empty_asks", 0) + 1
    return update


def record(state: LaptState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Turn tool results into trials and tell the strategy."""
    ctx = context_of(runtime)
    results = [m for m in state.get("messages", []) if isinstance(m, ToolMessage)]
    new: list[Trial] = []
    for msg in sorted(results, key=lambda m: int(m.tool_call_id.split("-")[1])):
        if isinstance(msg.artifact, dict):
            trial = Trial.model_validate(msg.artifact)
        else:  # the tool itself raised: ToolNode turned the error into text
            index = int(msg.tool_call_id.split("-")[1])
            call = next(c for c in state["messages"][0].tool_calls if c["id"] == msg.tool_call_id)
            trial = Trial(
                index=index,
                arch=call["args"]["arch"],
                task=ctx.settings.target,
                status=Status.FAILED,
                round=state.get("round", 0),
                error=str(msg.content)[:500],
            )
        new.append(trial)
        ctx.on_trial(trial)
    strategy = _strategy(ctx, state)
    strategy.tell([(ctx.space.parse(t.arch), t.fitness) for t in new])
    return {
        "trials": [t.model_dump(mode="json") for t in new],
        "strategy": strategy.state_dict(),
        "messages": [],
        "since_adapt": state.get("since_adapt", 0) + len(new),
    }


def adapt(state: LaptState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Update the principles: the improved branch learns from the best target architectures, the stalled
    branch asks for other ops based on the original principles."""
    ctx = context_of(runtime)
    s = ctx.settings
    trials = _trials(state)
    best = _best(trials)
    best_val = best.fitness if best is not None else None  # fitness: higher is better whatever the metric
    before = state.get("best_at_adapt")
    improved = best_val is not None and (before is None or best_val > before)
    branch = "improved" if improved else "stalled"
    principles = state.get("principles") or []
    update: dict[str, Any] = {
        "branch": branch,
        "since_adapt": 0,
        "best_at_adapt": best_val,
        "round": state.get("round", 0) + 1,
    }
    if not principles:
        decision = {"agent": "adapter", "branch": branch, "ok": False, "note": "no principles to adapt"}
        ctx.on_event("decision", decision)
        return update | {"decisions": [decision]}
    ok = sorted((t for t in trials if t.fitness is not None), key=lambda t: -(t.fitness or 0.0))
    # Agents read fitness (a lower-is-better metric negated), as the learner does; the space says so.
    top = [(ctx.space.describe_genotype(ctx.space.parse(t.arch)), float(t.fitness or 0.0)) for t in ok[: s.top_target]]
    original = PrincipleSet.model_validate(principles[0])
    current = PrincipleSet.model_validate(principles[-1])
    outcome = ctx.adapter(branch, ctx.space, original, current, s.target, top, state["masks"][-1]["mask"])
    if outcome.value is not None:
        update["principles"] = [*principles, outcome.value.model_dump()]
        ctx.on_event("principles", outcome.value.model_dump())
    decision = _decision(
        "adapter",
        outcome,
        branch=branch,
        best=best_val,
        note="" if outcome.value is not None else "kept the current principles",
    )
    ctx.on_event("decision", decision)
    return update | {"usage": _usage(state, outcome), "decisions": [decision]}


def finish(state: LaptState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Mark the end of the run and why it ended."""
    used = len(state.get("trials", []))
    reason = "budget" if used >= context_of(runtime).settings.budget else "exhausted"
    context_of(runtime).on_event("finish", {"reason": reason, "evaluations": used})
    return {"done": reason}
