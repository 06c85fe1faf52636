"""The compared methods, each run as one job (method, pair, seed) and reduced to one result row.

* ``lapt``: the whole graph (principles learned on the sources, refined space, adaptation), through
  :func:`lapt.api.execute` exactly as ``lapt run`` does, without a run directory;
* ``lapt-transfer``: the same with ``adapt=False`` (transfer only);
* ``rea`` and ``random``: the strategies of :mod:`lapt.strategies` in the full space, in a plain loop;
* ``rea-oracle``: REA inside the best region of the allowed size (:mod:`lapt.experiments.oracle`), a ceiling
  that reads the target's table.

Every method uses the job's seed for its strategy, REA uses the space's search defaults (the paper's
population 5 / tournament 2 on NB201, 10 / 5 on TNB101; a space file's ``[search]``) and every
evaluation is the same table lookup
(:func:`lapt.tools.evaluation.evaluate_trial`). This module runs inside worker processes: it takes
plain arguments and returns a small picklable :class:`JobResult`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from lapt.experiments.failures import count_failures
from lapt.experiments.oracle import OracleRegion, best_region
from lapt.experiments.plan import LAPT_METHODS, BenchConfig, Job
from lapt.runs.config import RunSettings
from lapt.schemas import Trial
from lapt.search.metrics import (
    evals_to_reach,
    incumbent_at,
    incumbent_curve,
    paper_outcome,
    reported_metric,
    thresholds,
)
from lapt.spaces import MaskSpec, SearchSpace, get_space
from lapt.tables.base import BenchmarkTable
from lapt.tables.registry import table_for


@dataclass
class JobResult:
    """What one job contributes to the bench.

    Attributes:
        row: one line of ``results.csv``.
        curve: the reported metric of the incumbent after each evaluation (None before a success).
        mask_counts: LAPT only: per layer and op, how many evaluations ran under a mask allowing it.
    """

    row: dict[str, Any]
    curve: list[float | None]
    mask_counts: list[list[int]] | None = None


def bench_table(space: str) -> BenchmarkTable:
    """The table a bench looks architectures up in: the space's own (built-in, or declared by its file)."""
    table = table_for(get_space(space))
    if table is None:  # build_config refuses such spaces before any job runs
        raise ValueError(f"space {space} has no benchmark table")
    return table


@functools.cache
def oracle_region(space: str, target: str, max_ops: int) -> OracleRegion:
    """The oracle region of ``target`` (cached per process: every seed of a pair shares it)."""
    table = bench_table(space)
    return best_region(table.fitness(target), [layer.ops for layer in table.space.layers], max_ops)


def settings_for(job: Job, config: BenchConfig, llm: Any = None) -> tuple[RunSettings, SearchSpace]:
    """The RunSettings of a job (LAPT runs use them whole; baselines take REA's population and limits)."""
    from lapt.runs.config import resolve_settings

    values: dict[str, Any] = {
        "space": config.space,
        "sources": list(job.pair.sources),
        "target": job.pair.target,
        "budget": config.budget,
        "seed": job.seed,
        "max_ops": config.max_ops,
        "top_k": config.top_k,
        "adapt": job.method != "lapt-transfer",
        "prompts_dir": config.prompts_dir,
        # A bench measures: a run whose learner gave no principles goes on in the full space and is
        # counted as degraded (the report says how many), rather than stopping the whole bench.
        "on_agent_failure": "continue",
        "allow_same_task": config.allow_same_task,
    }
    if llm is not None and job.method != "lapt-offline":
        # A model's run falls back to the offline agents as a user's would (and is counted as degraded).
        values |= {"reasoner": "llm", "llm": llm.public(), "on_agent_failure": "fallback"}
        # Every job of the bench shares one response cache (SQLite, safe across processes), so a repeated
        # bench replays every answer and costs nothing.
        values["llm_cache"] = config.llm_cache
    return resolve_settings(**values)


def search_loop(
    space: SearchSpace, strategy: Any, mask: MaskSpec, table: BenchmarkTable, task: str, budget: int
) -> list[Trial]:
    """Ask one, evaluate it, tell it; until the budget is spent or the region is exhausted."""
    from lapt.tools.evaluation import TabularEvaluator, evaluate_trial

    evaluator = TabularEvaluator(table)
    trials: list[Trial] = []
    while len(trials) < budget:
        proposed = strategy.ask(mask, 1)
        if not proposed:
            break
        trial = evaluate_trial(evaluator, space, space.to_str(proposed[0]), task, len(trials), 0)
        strategy.tell([(proposed[0], trial.fitness)])
        trials.append(trial)
    return trials


def _mask_counts(space: SearchSpace, trials: list[Trial], masks: list[dict[str, Any]]) -> list[list[int]]:
    """Per layer and op: evaluations made while the mask they were drawn in allowed that op."""
    from lapt.search.session import spec_of

    specs = {int(rec["version"]): spec_of(space, rec["mask"]) for rec in masks}
    counts = [[0] * len(space.ops) for _ in space.layers]
    op_index = {op: k for k, op in enumerate(space.ops)}
    for trial in trials:
        spec = specs.get(trial.mask_version)
        if spec is None:
            continue
        for i, allowed in enumerate(spec.ops):
            for op in allowed:
                counts[i][op_index[op]] += 1
    return counts


def run_job(job: Job, config: BenchConfig, llm: Any = None) -> JobResult:
    """Run one job and reduce it to a result row, a curve and (for LAPT) mask statistics."""
    from lapt.strategies import make_strategy

    table = bench_table(config.space)
    space: SearchSpace = table.space
    usage = {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0}
    failed_decisions, degraded = 0, False
    mask_counts = None
    outside_share: float | None = None  # LAPT runs: share of evaluations outside the refined region
    principle_changes: int | None = None  # LAPT runs: what the judgement of the answers dropped
    if job.method in LAPT_METHODS:
        from lapt.api import execute

        if job.method == "lapt-offline":
            llm = None
        settings, _ = settings_for(job, config, llm)
        result = execute(settings, space, llm=llm, run_dir=False)
        trials = result.trials
        usage = {k: int(result.summary["usage"].get(k, 0)) for k in usage}
        mask_counts = _mask_counts(space, trials, result.masks)
        region_size = int(result.masks[0]["size"]) if result.masks else space.size()
        ended = str(result.summary.get("ended") or "budget")
        adaptations = int(result.summary.get("adaptations", 0))
        failed_decisions = sum(d.get("ok") is False for d in result.decisions)
        principle_changes = sum(len(d.get("changes") or []) for d in result.decisions if d.get("agent") != "refiner")
        degraded = bool(result.degraded)
        if trials and result.settings.escape:  # only trials drawn outside the region carry the flag
            outside_share = sum(t.extras.get("outside_region") is True for t in trials) / len(trials)
    else:
        strategy_name = "random" if job.method == "random" else "rea"
        defaults = space.search_defaults()
        strategy = make_strategy(
            strategy_name, space, job.seed, population=defaults.population, tournament=defaults.tournament
        )
        mask = space.full_mask()
        if job.method == "rea-oracle":
            region = oracle_region(config.space, job.pair.target, config.max_ops)
            mask = MaskSpec(ops=region.ops)
        trials = search_loop(space, strategy, mask, table, job.pair.target, config.budget)
        region_size = space.size(mask)
        ended = "budget" if len(trials) >= config.budget else "exhausted"
        adaptations = 0
    fitness = table.fitness(job.pair.target)
    optimum, top = thresholds(fitness)
    paper = paper_outcome(trials, fitness, config.budget)
    best = incumbent_at(trials, len(trials))
    to_top = evals_to_reach(trials, top)
    row: dict[str, Any] = {
        "space": config.space,
        "method": job.method,
        "pair": job.pair.label,
        "sources": "+".join(job.pair.sources),
        "target": job.pair.target,
        "seed": job.seed,
        "budget": config.budget,
        "evaluations": len(trials),
        "ended": ended,
        "metric": "test" if table.has_test else "val",
        "paper_evals": paper.evaluations,
        "paper_reached": paper.reached,
        "paper_metric": reported_metric(paper.incumbent),
        "best_val": None if best is None else best.val,
        "best_arch": None if best is None else best.arch,
        "reached_top": to_top is not None,
        "evals_to_top": to_top,
        "reached_optimum": evals_to_reach(trials, optimum) is not None,
        "region_size": region_size,
        "adaptations": adaptations,
        "outside_share": outside_share,
        "principle_changes": principle_changes,
        **usage,
        "failed_decisions": failed_decisions,
        "degraded": degraded,
        **count_failures(space, table, trials, job.pair.target).columns(),
    }
    for b in config.report_budgets():
        row[f"final_at_{b}"] = reported_metric(incumbent_at(trials, b))
    curve = [reported_metric(t) for t in incumbent_curve(trials)]
    return JobResult(row=row, curve=curve, mask_counts=mask_counts)
