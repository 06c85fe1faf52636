"""Graph nodes: learn_principles -> refine_space -> search -> evaluate -> (adapt ->) search ...

Each node reads the state and the run context and returns only an update: the new facts (a principle
set, a mask, trials, decisions, each numbered by its place in the run's record) and the counters that
go with them. Nodes write nothing themselves; the runner streams their updates to the run directory,
the progress bar and the trace (:mod:`lapt.graph.recorder`).

The search steps outside the refined region now and then and draws ops by the target evidence
(:mod:`lapt.strategies.escape`); a stalled search is never sent back to a region it tried, whatever the
refiner answered (:func:`lapt.transfer.regions.untried_region`).

Agents that give no valid answer are recorded as failed decisions, never hidden. With
``on_agent_failure="fallback"`` (the default) a model's learner without usable principles is replaced by
the offline miner's, and a model's refiner without a usable mask by the offline refiner's region from
the same principles; a learner with no principles at all ends the run (``"stop"``, or no fallback) or
searches the full space (``"continue"``). A refiner without a mask otherwise keeps the previous one (the
full space at the start) and an adapter without principles keeps the current ones; the next adaptation
asks again.
"""

from __future__ import annotations

from typing import Any

from lapt.agents.adapter import AdaptInput, TargetRow
from lapt.agents.outcome import AgentOutcome
from lapt.graph.context import RunContext
from lapt.graph.state import LaptState
from lapt.runs.summary import STOPPED_BY_LEARNER
from lapt.schemas import PrincipleSet
from lapt.transfer.grounding import source_best
from lapt.transfer.masks import from_spec, full_mask, mask_model, recorded_size, to_spec
from lapt.transfer.regions import layer_scores, untried_region
from lapt.transfer.target_evidence import evidence_of, op_weights, source_archs


# -- helpers -----------------------------------------------------------------------------------------
def _decisions(state: LaptState, *entries: dict[str, Any]) -> dict[str, Any]:
    """The update that appends ``entries`` to the decisions, each numbered by its line in decisions.jsonl."""
    n = state.get("n_decisions", 0)
    numbered = [{"seq": n + i, **e} for i, e in enumerate(entries)]
    return {"decisions": numbered, "n_decisions": n + len(numbered)}


def _outcome_fields(outcome: AgentOutcome[Any]) -> dict[str, Any]:
    reply = outcome.reply
    return {
        "ok": outcome.value is not None,
        "error": reply.error if outcome.value is None else None,
        "failure": reply.failure if outcome.value is None else None,
        "extraction": reply.extraction,
        "saw_tasks": outcome.saw_tasks,
        "llm_calls": reply.calls,
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "attempts": reply.attempts,
        "changes": reply.changes,
        "support": reply.support,
    }


def _fallback_fields(by: str, outcome: AgentOutcome[Any]) -> dict[str, Any]:
    return {"by": by, "ok": outcome.value is not None, "error": outcome.reply.error}


def _usage(state: LaptState, outcome: AgentOutcome[Any]) -> dict[str, int]:
    u = dict(state.get("usage") or {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0})
    u["llm_calls"] += outcome.reply.calls
    u["input_tokens"] += outcome.reply.input_tokens
    u["output_tokens"] += outcome.reply.output_tokens
    return u


def _failed(state: LaptState, agent: str) -> dict[str, int]:
    failures = dict(state.get("failures") or {})
    failures[agent] = failures.get(agent, 0) + 1
    return failures


def _mask_record(state: LaptState, ctx: RunContext, mask: Any, source: str, note: str) -> dict[str, Any]:
    """A new mask version: the mask in canonical order, its size, where it came from and why."""
    spec = to_spec(ctx.space, mask)
    previous = state.get("mask")
    return {
        "version": 0 if previous is None else previous["version"] + 1,
        "round": state.get("round", 0),
        "mask": from_spec(ctx.space, spec, mask.rationale).model_dump(),
        "size": recorded_size(ctx.space.size(spec)),
        "source": source,
        "note": note,
    }


def _evidence(state: LaptState, ctx: RunContext) -> dict[str, Any]:
    """The target evidence as of the last adaptation (before any: the sources' prediction alone).

    A function of the trials up to ``adapted_at`` and the source tables, so it is computed once per
    adaptation and kept in the search session, not in the state: a resumed run computes the same.
    """
    session = ctx.search
    at = int(state.get("adapted_at") or 0)
    if session.evidence is None or session.evidence[0] != at:
        sources = ctx.sources() if ctx.settings.sources else []
        record = session.record_until(at, source_archs(ctx.space, sources))
        session.evidence = (at, evidence_of(record, sources))
    return session.evidence[1]


# -- nodes -----------------------------------------------------------------------------------------
def learn_principles(state: LaptState, ctx: RunContext) -> dict[str, Any]:
    """Learn principles from the source task(s), or start from the given ones."""
    if ctx.initial_principles is not None:
        pset = ctx.initial_principles
        given = {"agent": "learner", "ok": True, "note": f"given: {pset.source}", "saw_tasks": []}
        return {"principles": [pset.model_dump()], **_decisions(state, given)}
    outcome = ctx.agents.learner(ctx.space, ctx.sources())
    update: dict[str, Any] = {"usage": _usage(state, outcome)}
    decision: dict[str, Any] = {"agent": "learner", **_outcome_fields(outcome)}
    if outcome.value is not None:
        update["principles"] = [outcome.value.model_dump()]
        return update | _decisions(state, {**decision, "note": ""})
    update["failures"] = _failed(state, "learner")
    mode = ctx.settings.on_agent_failure
    if mode == "fallback" and ctx.agents.fallback_learner is not None:
        fallback = ctx.agents.fallback_learner(ctx.space, ctx.sources())
        decision["fallback"] = _fallback_fields("offline miner", fallback)
        if fallback.value is not None:
            update["principles"] = [fallback.value.model_dump()]
            decision["note"] = "no usable principles from the model: the offline miner's principles are used"
            return update | _decisions(state, decision)
    if mode == "continue":
        decision["note"] = "no principles: searching the full space without transfer (on_agent_failure=continue)"
    else:
        update["done"] = STOPPED_BY_LEARNER
        decision["note"] = "no principles: the run stops before any search"
    return update | _decisions(state, decision)


def _source_best(ctx: RunContext) -> list[Any]:
    """The source tasks' top-k architectures the learner saw (what a first region must keep enough of)."""
    if not ctx.settings.sources:
        return []
    return source_best([(src.archs, src.values) for src in ctx.sources()], ctx.settings.top_k)


def refine_space(state: LaptState, ctx: RunContext) -> dict[str, Any]:
    """Turn the latest principles into a mask; keep the previous mask if the refiner fails."""
    s = ctx.settings
    ctx.search.sync(state)
    principles = state.get("principles") or []
    previous = state.get("mask")
    outcome = fallback = None
    if principles:
        pset = PrincipleSet.model_validate(principles[-1])
        branch = state.get("branch")
        context = "Initial refinement from the transferred principles."
        avoid: list[dict[str, Any]] = []
        best = _source_best(ctx) if previous is None and not branch else []
        if branch == "stalled" and previous is not None:
            context = "The search stalled in the regions tried so far; the principles were revised to point elsewhere."
            avoid = ctx.search.regions_tried()
        elif branch == "improved":
            context = "The principles were just updated with results from the target task."
        outcome = ctx.agents.refiner(ctx.space, pset, s.max_ops, s.target, context, avoid_regions=avoid, best=best)
        if outcome.value is None and s.on_agent_failure == "fallback" and ctx.agents.fallback_refiner is not None:
            fallback = ctx.agents.fallback_refiner(ctx.space, pset, s.max_ops, s.target, context, avoid_regions=avoid)
    update: dict[str, Any] = {}
    if outcome is not None:
        update["usage"] = _usage(state, outcome)
    if outcome is not None and outcome.value is not None:
        mask, source, note = outcome.value, "refiner", ""
    elif outcome is not None and fallback is not None and fallback.value is not None:
        update["failures"] = _failed(state, "refiner")
        mask, source = fallback.value, "offline_refiner"
        note = f"refiner gave no usable mask ({outcome.reply.error}); the offline refiner's region is searched"
    else:
        why = outcome.reply.error if outcome is not None else "no principles"
        if outcome is not None:
            update["failures"] = _failed(state, "refiner")
        if previous is not None:
            mask = mask_model(ctx.space)(**previous["mask"])
            source, note = "kept", f"refiner gave no valid mask ({why}); kept the previous one"
        else:
            mask = full_mask(ctx.space, rationale=f"full space: {why}")
            source, note = "full", f"no valid mask ({why}); searching the full space"
    if source in ("refiner", "offline_refiner") and state.get("branch") == "stalled" and previous is not None:
        # A stalled search never goes back to a region it has tried, whatever the refiner answered:
        # the proposal is changed as little as possible (an LLM refiner is told the tried regions, but
        # may repeat one; the offline one changes its own answer the same way).
        tried = ctx.search.specs_tried()
        spec = to_spec(ctx.space, mask)
        if spec in tried:
            scores = layer_scores(ctx.space, _evidence(state, ctx))
            fresh = untried_region(ctx.space, spec, tried, scores, s.max_ops or 1)
            if fresh is not None:
                mask = from_spec(ctx.space, fresh, f"{mask.rationale} (changed: the region was tried before)")
                source = "untried"
                note = "the refiner proposed a region tried before; changed to the closest untried one"
            else:
                note = "the refiner proposed a region tried before, and every region near it was tried too"
    record = _mask_record(state, ctx, mask, source, note)
    decision = {"agent": "refiner", **(_outcome_fields(outcome) if outcome else {"ok": False}), "source": source}
    if fallback is not None:
        decision["fallback"] = _fallback_fields("offline refiner", fallback)
    decision |= {"note": note, "size": record["size"], "mask_version": record["version"]}
    return update | {"mask": record} | _decisions(state, decision)


def search(state: LaptState, ctx: RunContext) -> dict[str, Any]:
    """Ask the strategy for the next candidates inside the current mask and request their evaluation."""
    session = ctx.search
    session.sync(state)
    s = ctx.settings
    used = state.get("n_trials", 0)
    n = min(s.batch_size, s.budget - used)
    if s.adapt and s.adapt_every:
        n = min(n, s.adapt_every - state.get("since_adapt", 0)) or 1
    if s.escape:
        evidence = _evidence(state, ctx)
        if session.weights_from is not evidence:  # new evidence after an adaptation (or a resume)
            session.set_weights(op_weights(evidence))
            session.weights_from = evidence
    genotypes = session.ask(n)
    update: dict[str, Any] = {}
    if not genotypes and (not s.adapt or state.get("empty_asks", 0) >= 1 or not state.get("principles")):
        # The region is exhausted and adapting did not (or cannot) open a new one: rather than end the run
        # with budget left, widen to the full space and say so.
        full = ctx.space.full_mask()
        current = state["mask"]
        if session.spec() != full:
            note = f"the refined region ({current['size']} architectures) is exhausted"
            mask = from_spec(ctx.space, full, "region exhausted: widened to the full space")
            record = _mask_record(state, ctx, mask, "widened", note)
            session.enter_mask(record)
            decision = {"agent": "search", "ok": True, "source": "widened", "note": note}
            decision["mask_version"] = record["version"]
            update |= {"mask": record} | _decisions(state, decision)
            genotypes = session.ask(n)
    version = session.mask_version or 0
    pending = []
    for i, g in enumerate(genotypes):
        arch = ctx.space.to_str(g)
        p = {"id": f"eval-{used + i}", "index": used + i, "arch": arch, "mask_version": version}
        if s.escape and session.is_outside(g):
            p["outside"] = True
        pending.append(p)
    update |= {
        "pending": pending,
        "search": session.state(),
        "empty_asks": 0 if pending else state.get("empty_asks", 0) + 1,
    }
    return update


def adapt(state: LaptState, ctx: RunContext) -> dict[str, Any]:
    """Update the principles: the improved branch learns from the best target architectures, the stalled
    branch asks for other ops based on the original principles; both see the target evidence (how each
    op did on the target against the sources' prediction, :mod:`lapt.transfer.target_evidence`)."""
    session = ctx.search
    session.sync(state)
    s = ctx.settings
    ok = session.best(max(1, s.top_target or 1))
    best = ok[0]["fitness"] if ok else None
    before = state.get("best_at_adapt")
    improved = best is not None and (before is None or best > before)
    branch = "improved" if improved else "stalled"
    principles = state.get("principles") or []
    update: dict[str, Any] = {
        "branch": branch,
        "since_adapt": 0,
        "adapted_at": state.get("n_trials", 0),
        "best_at_adapt": best,
        "round": state.get("round", 0) + 1,
    }
    if not principles:
        decision = {"agent": "adapter", "branch": branch, "ok": False, "note": "no principles to adapt"}
        return update | _decisions(state, decision)
    round_ = state.get("round", 0)
    # Agents read fitness (a lower-is-better metric negated), as the learner does; the space says so.
    top = [
        TargetRow(
            ctx.space.describe_genotype(ctx.space.parse(t["arch"])), float(t["fitness"]), t.get("round", 0) == round_
        )
        for t in ok[: s.top_target]
    ]
    evidence = _evidence({**state, **update}, ctx)  # as of now: update["adapted_at"] is this evaluation
    outcome = ctx.agents.adapter(
        AdaptInput(
            branch=branch,
            space=ctx.space,
            original=PrincipleSet.model_validate(principles[0]),
            current=PrincipleSet.model_validate(principles[-1]),
            target_task=s.target,
            current_mask=state["mask"]["mask"],
            top_target=top,
            tried_regions=session.regions_tried()[:-1],
            evidence=evidence,
            max_ops=s.max_ops,
        )
    )
    if outcome.value is not None:
        update["principles"] = [outcome.value.model_dump()]
        note = ""
    else:
        update["failures"] = _failed(state, "adapter")
        note = "kept the current principles; the next adaptation asks again"
    decision = {"agent": "adapter", **_outcome_fields(outcome), "branch": branch, "best": best, "note": note}
    decision["evidence"] = {"evaluations": evidence["evaluations"], "sources": evidence["sources"]}
    return update | {"usage": _usage(state, outcome)} | _decisions(state, decision)


def finish(state: LaptState, ctx: RunContext) -> dict[str, Any]:
    """Mark the end of the run and why it ended."""
    if state.get("done"):
        return {}
    used = state.get("n_trials", 0)
    return {"done": "budget" if used >= ctx.settings.budget else "exhausted"}
