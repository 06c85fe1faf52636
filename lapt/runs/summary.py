"""``summary.json``: what a run found, what it cost, and whether any agent failed it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lapt.runs.config import RunSettings
from lapt.search.metrics import evals_to_reach, incumbent_curve, thresholds
from lapt.schemas import Trial
from lapt.spaces import SearchSpace
from lapt.tables.base import BenchmarkTable

STOPPED_BY_LEARNER = "agent_failed"


def degraded_reasons(decisions: Sequence[Mapping[str, Any]], done: str | None) -> list[str]:
    """Why a run is not the method it was asked to be: agents without a valid answer, fallbacks taken.

    A run with any reason here says so in its summary and on the command line's last line; it never
    reports work it did not do.
    """
    reasons: list[str] = []
    learner = [d for d in decisions if d.get("agent") == "learner" and d.get("ok") is False]
    if learner:
        first = learner[0]
        why = first.get("error") or first.get("note") or "no answer"
        if (first.get("fallback") or {}).get("ok"):
            reasons.append(f"the learner gave no usable principles ({why}): the offline miner's principles were used")
        else:
            stopped = " (the run stopped before any search)" if done == STOPPED_BY_LEARNER else " (no transfer)"
            reasons.append(f"the learner gave no principles{stopped}: {why}")
    refiner = [d for d in decisions if d.get("agent") == "refiner" and d.get("ok") is False]
    if refiner:
        first = refiner[0]
        replaced = sum(d.get("source") == "offline_refiner" for d in refiner)
        instead = (
            f"the offline refiner's region was searched instead {replaced} time(s)"
            if replaced
            else "the previous mask or the full space was searched instead"
        )
        if replaced and replaced < len(refiner):
            instead += ", the previous mask or the full space otherwise"
        reasons.append(
            f"{len(refiner)} refinement(s) without a valid mask (first: {first.get('error') or first.get('note')}); "
            + instead
        )
    adapter = [d for d in decisions if d.get("agent") == "adapter" and d.get("ok") is False]
    if adapter:
        first = adapter[0]
        reasons.append(
            f"{len(adapter)} adaptation(s) without new principles (first: {first.get('error') or first.get('note')})"
        )
    return reasons


def summarize(
    settings: RunSettings,
    space: SearchSpace,
    trials: Sequence[Trial],
    decisions: Sequence[Mapping[str, Any]],
    state: Mapping[str, Any],
    wall_s: float,
    table: BenchmarkTable | None = None,
) -> dict[str, Any]:
    """The summary of a run: best architecture, metrics, evaluations to the optimum / top-0.1 %, LLM usage,
    adaptations done and failed, and why the run is degraded (if it is)."""
    curve = incumbent_curve(trials)
    best = curve[-1] if curve else None
    adaptations = [d for d in decisions if d.get("agent") == "adapter"]
    out: dict[str, Any] = {
        "space": space.name,
        "sources": settings.sources,
        "target": settings.target,
        "seed": settings.seed,
        "budget": settings.budget,
        "evaluations": len(trials),
        "failed": sum(t.fitness is None for t in trials),
        "ended": state.get("done"),
        "best": None if best is None else {"arch": best.arch, "val": best.val, "test": best.test, "index": best.index},
        "usage": dict(state.get("usage") or {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0}),
        "adaptations": int(state.get("round", 0)),
        "adaptations_failed": sum(d.get("ok") is False for d in adaptations),
        # Evaluations the search made outside the refined region (lapt.strategies.escape).
        "outside_region": sum(t.extras.get("outside_region") is True for t in trials),
        "agent_failures": dict(state.get("failures") or {}),
        "degraded": degraded_reasons(decisions, state.get("done")),
        "wall_s": round(wall_s, 3),
    }
    if table is not None:
        optimum, top = thresholds(table.fitness(settings.target))
        out["evals_to_optimum"] = evals_to_reach(trials, optimum)
        out["evals_to_top0.1%"] = evals_to_reach(trials, top)
        out["optimum_val"] = optimum if space.higher_is_better else -optimum
    return out
