"""The Python API and composition root: settings in, a finished run (and its run directory) out.

>>> import lapt
>>> result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=20, seed=0)
>>> result.summary["best"]["test"]  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapt import __version__
from lapt.config import RunSettings, parse_settings, space_defaults
from lapt.errors import UserError
from lapt.metrics import evals_to_reach, incumbent_curve, thresholds
from lapt.run_dir import RunDirectory, default_run_dir
from lapt.schemas import PrincipleSet, Trial
from lapt.spaces import SearchSpace, get_space


@dataclass
class RunResult:
    """What a run produced (the same facts as its run directory)."""

    settings: RunSettings
    trials: list[Trial]
    principles: list[PrincipleSet]
    masks: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    summary: dict[str, Any]
    run_dir: Path | None = None
    prompt_hashes: dict[str, str] = field(default_factory=dict)


@functools.cache
def _all_genotypes(space_name: str) -> tuple[Any, ...]:
    return tuple(get_space(space_name).enumerate())


def target_table(space: SearchSpace, settings: RunSettings) -> Any:
    """The benchmark table used for the target task (None when evaluating by training)."""
    if settings.evaluator != "table":
        return None
    from lapt.tools.evaluation import TabularEvaluator

    return TabularEvaluator.for_space(space, settings.table).table


def make_reasoner(settings: RunSettings, llm: Any = None) -> Any:
    """The offline miner, or the LLM reasoner when ``llm`` (an LLMSettings) is given."""
    if llm is None:
        from lapt.agents.offline import OfflineReasoner

        return OfflineReasoner()
    from lapt.agents.llm import LLMReasoner

    return LLMReasoner(llm)


def resolve_settings(**values: Any) -> tuple[RunSettings, SearchSpace]:
    """Validate settings and fill the per-space defaults; UserError on any problem."""
    settings = parse_settings(**values)
    space = get_space(settings.space)
    settings = settings.resolved(space_defaults(space.name, space.adapt_every, space.default_max_ops))
    if settings.evaluator == "table":
        table = target_table(space, settings)
        table.check_task(settings.target)
        for src in settings.sources:
            table.check_task(src)
    if not settings.sources and settings.principles_from is None:
        raise UserError("give at least one --source task (or --principles to start from stored principles)")
    return settings, space


def build_context(
    settings: RunSettings,
    space: SearchSpace,
    llm: Any = None,
    initial_principles: PrincipleSet | None = None,
    evaluator: Any = None,
) -> tuple[Any, dict[str, str]]:
    """Wire reasoner, prompts, agents and evaluator into a RunContext; returns (context, prompt hashes)."""
    from lapt.agents.adapter import make_adapter
    from lapt.agents.learner import SourceData, make_principle_learner
    from lapt.agents.prompts import load_prompts
    from lapt.agents.refiner import make_space_refiner
    from lapt.graph.context import RunContext
    from lapt.tools.evaluation import TabularEvaluator

    prompts = load_prompts(Path(settings.prompts_dir) if settings.prompts_dir else None)
    reasoner = make_reasoner(settings, llm)
    if evaluator is None:
        if settings.evaluator == "table":
            evaluator = TabularEvaluator.for_space(space, settings.table)
        else:
            from lapt.tools.training_evaluator import make_training_evaluator

            evaluator = make_training_evaluator(settings.train or {})
    source_table = TabularEvaluator.for_space(space, settings.table).table if settings.sources else None

    def sources() -> list[SourceData]:
        # Only the source tasks' columns leave the table: the learner never sees the target.
        if source_table is None:
            raise UserError(f"space {space.name} has no table to learn principles from; pass --principles")
        archs = _all_genotypes(space.name)
        return [SourceData(t, archs, source_table.values(t, "val")) for t in settings.sources]

    ctx = RunContext(
        settings=settings,
        space=space,
        evaluator=evaluator,
        learner=make_principle_learner(reasoner, prompts, settings.top_k),
        refiner=make_space_refiner(reasoner, prompts),
        adapter=make_adapter(reasoner, prompts),
        sources=sources,
        initial_principles=initial_principles,
    )
    return ctx, prompts.hashes


def summarize(
    settings: RunSettings, space: SearchSpace, state: dict[str, Any], wall_s: float, table: Any = None
) -> dict[str, Any]:
    """summary.json: best architecture, metrics, evaluations to the optimum / top-0.1 %, LLM usage."""
    trials = [Trial.model_validate(t) for t in state.get("trials", [])]
    curve = incumbent_curve(trials)
    best = curve[-1] if curve else None
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
        "usage": state.get("usage") or {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0},
        "adaptations": state.get("round", 0),
        "wall_s": round(wall_s, 3),
    }
    if table is not None:
        optimum, top = thresholds(table.values(settings.target, "val"))
        out["evals_to_optimum"] = evals_to_reach(trials, optimum)
        out["evals_to_top0.1%"] = evals_to_reach(trials, top)
        out["optimum_val"] = optimum
    return out


def run(
    space: str = "nb201",
    sources: Sequence[str] = ("cifar10",),
    target: str = "cifar100",
    budget: int = 20,
    seed: int = 0,
    *,
    llm: Any = None,
    run_dir: str | Path | bool | None = False,
    progress: bool = False,
    initial_principles: PrincipleSet | None = None,
    evaluator: Any = None,
    **settings: Any,
) -> RunResult:
    """Run LAPT end to end: learn principles, refine the space, search, adapt, until the budget is spent.

    Args:
        space, sources, target, budget, seed: the run; see :class:`~lapt.config.RunSettings` for the rest.
        llm: an :class:`~lapt.agents.llm.LLMSettings` to use a language model; None for the offline miner.
        run_dir: where to write the run (a path), a new folder under ``./runs`` (None), or nowhere (False).
        progress: show a progress bar on stderr.
        initial_principles: start from these principles instead of learning.
        evaluator: a custom evaluator (default: the space's benchmark table).
    """
    values = {"space": space, "sources": list(sources), "target": target, "budget": budget, "seed": seed, **settings}
    if llm is not None:
        values.setdefault("reasoner", "llm")
        values["llm"] = llm.public()
    if initial_principles is not None:
        values.setdefault("principles_from", initial_principles.source)
    resolved, sp = resolve_settings(**values)
    return execute(
        resolved,
        sp,
        llm=llm,
        run_dir=run_dir,
        progress=progress,
        initial_principles=initial_principles,
        evaluator=evaluator,
    )


def execute(
    settings: RunSettings,
    space: SearchSpace,
    *,
    llm: Any = None,
    run_dir: str | Path | bool | None = False,
    progress: bool = False,
    initial_principles: PrincipleSet | None = None,
    evaluator: Any = None,
) -> RunResult:
    """Run validated settings through the graph (see :func:`run`)."""
    from lapt.graph.build import build_graph
    from lapt.graph.routing import recursion_limit

    ctx, hashes = build_context(settings, space, llm, initial_principles, evaluator)
    writer: RunDirectory | None = None
    if run_dir is not False:
        writer = RunDirectory(Path(run_dir) if run_dir not in (None, True) else default_run_dir())  # type: ignore[arg-type]
        writer.check_new()
        writer.create(
            {"settings": settings.model_dump(mode="json"), "prompt_hashes": hashes, "lapt_version": __version__}
        )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=settings.budget, desc=f"lapt {space.name} {settings.target}", unit="eval", leave=True)

    def on_trial(trial: Trial) -> None:
        if writer is not None:
            writer.append("trials.jsonl", [trial.model_dump(mode="json")])
        if bar is not None:
            bar.update(1)
            if trial.val is not None:
                bar.set_postfix(last=f"{trial.val:.2f}")

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if writer is None:
            return
        if kind == "principles":
            writer.write_principles(payload)
        elif kind == "mask":
            writer.write_mask(payload)
        elif kind == "decision":
            writer.append("decisions.jsonl", [payload])

    ctx.on_trial = on_trial
    ctx.on_event = on_event
    graph = build_graph()
    start = time.perf_counter()
    try:
        state = graph.invoke(
            {"trials": [], "decisions": []},
            context=ctx,
            config={"recursion_limit": recursion_limit(settings.budget, settings.adapt_every, settings.batch_size)},
        )
    finally:
        if bar is not None:
            bar.close()
    table = target_table(space, settings)
    summary = summarize(settings, space, state, time.perf_counter() - start, table)
    if writer is not None:
        writer.write_summary(summary)
    return RunResult(
        settings=settings,
        trials=[Trial.model_validate(t) for t in state.get("trials", [])],
        principles=[PrincipleSet.model_validate(p) for p in state.get("principles", [])],
        masks=state.get("masks", []),
        decisions=state.get("decisions", []),
        summary=summary,
        run_dir=writer.path if writer is not None else None,
        prompt_hashes=hashes,
    )


def dumps(obj: Any) -> str:
    """JSON for terminals."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
