"""Run a bench: every job in a process pool, then the data files, then the report.

Each job is one (method, pair, seed) and depends on nothing but its arguments, so jobs run in any
order on any worker and the results, sorted back into plan order, are identical for any number of
workers. Workers are started with ``forkserver`` (``spawn`` where that is missing), never ``fork``:
the parent may hold threads (tqdm, LangChain executors) that a forked child would inherit half-way.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from lapt.experiments.files import (
    CURVES,
    RESULTS,
    CurvesFile,
    MaskStats,
    OracleInfo,
    Reference,
    write_curves,
    write_results,
)
from lapt.experiments.methods import JobResult, bench_table, oracle_region, run_job
from lapt.experiments.plan import LAPT_METHODS, BenchConfig, Job, plan_jobs, space_label
from lapt.spaces import MaskSpec

# Rough relative cost of a job, to start the slow ones first and keep every worker busy to the end.
_COST = {"lapt": 10, "lapt-transfer": 4, "rea": 1, "random": 1, "rea-oracle": 1}


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # The server imports the bench once; each worker forks from it instead of importing LangGraph anew.
        ctx.set_forkserver_preload(["lapt.experiments.methods"])
        return ctx
    return multiprocessing.get_context("spawn")


def run_jobs(config: BenchConfig, llm: Any = None, workers: int = 1, progress: bool = True) -> list[JobResult]:
    """Run every job of ``config`` and return the results in plan order (pair, method, seed)."""
    from tqdm import tqdm

    jobs = plan_jobs(config)
    results: dict[Job, JobResult] = {}
    bar = tqdm(total=len(jobs), desc=f"bench {space_label(config.space)}", unit="run", disable=not progress)
    try:
        if workers <= 1:
            for job in jobs:
                results[job] = run_job(job, config, llm)
                bar.update(1)
        else:
            order = sorted(jobs, key=lambda j: -_COST[j.method])
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=_context()) as pool:
                futures: dict[Future[JobResult], Job] = {pool.submit(run_job, j, config, llm): j for j in order}
                try:
                    for fut in as_completed(futures):
                        results[futures[fut]] = fut.result()
                        bar.update(1)
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()
    return [results[j] for j in jobs]


def references(config: BenchConfig) -> tuple[dict[str, Reference], dict[str, OracleInfo]]:
    """Per pair: the target's thresholds and best cell, and its oracle region (metrics as the table has them)."""
    from lapt.search.metrics import thresholds

    table = bench_table(config.space)
    space = table.space
    sign = 1.0 if space.higher_is_better else -1.0  # fitness back to the metric's own units
    refs: dict[str, Reference] = {}
    oracle: dict[str, OracleInfo] = {}
    for pair in config.pairs:
        optimum, top = thresholds(table.fitness(pair.target))
        region = oracle_region(config.space, pair.target, config.max_ops)
        best = space.from_index(region.best_index)
        m = table.lookup(best, pair.target)
        refs[pair.label] = Reference(
            optimum_val=sign * optimum,
            top_val=sign * top,
            optimum_metric=m.test if m.test is not None else m.val,
            best_arch=space.to_str(best),
        )
        oracle[pair.label] = OracleInfo(
            ops={layer.name: list(ops) for layer, ops in zip(space.layers, region.ops, strict=True)},
            size=space.size(MaskSpec(ops=region.ops)),
            mean_val=sign * region.mean_val,
        )
    return refs, oracle


def assemble(config: BenchConfig, results: list[JobResult], wall_s: float, workers: int) -> CurvesFile:
    """Gather curves and mask statistics (per method and pair) into the ``curves.json`` model."""
    table = bench_table(config.space)
    space = table.space
    jobs = plan_jobs(config)
    curves: dict[str, dict[str, list[list[float | None]]]] = {}
    masks: dict[str, dict[str, MaskStats]] = {}
    for job, res in zip(jobs, results, strict=True):
        curves.setdefault(job.method, {}).setdefault(job.pair.label, []).append(res.curve)
        if job.method in LAPT_METHODS and res.mask_counts is not None:
            stats = masks.setdefault(job.method, {}).setdefault(
                job.pair.label,
                MaskStats(
                    layers=list(space.layer_names),
                    ops=list(space.ops),
                    counts=[[0] * len(space.ops) for _ in space.layers],
                    evaluations=0,
                ),
            )
            for i, row in enumerate(res.mask_counts):
                for k, n in enumerate(row):
                    stats.counts[i][k] += n
            stats.evaluations += int(res.row["evaluations"])
    refs, oracle = references(config)
    return CurvesFile(
        config=config,
        metric="test" if table.has_test else "val",
        selection="test" if table.selection == "test" else "val",
        higher_is_better=space.higher_is_better,
        wall_s=round(wall_s, 3),
        workers=workers,
        references=refs,
        oracle=oracle,
        curves=curves,
        masks=masks,
    )


def run_bench(config: BenchConfig, out: Path, llm: Any = None, workers: int = 1, progress: bool = True) -> CurvesFile:
    """Run the bench and write ``results.csv``, ``curves.json``, ``summary.md`` and the plots to ``out``."""
    from lapt.experiments.report import write_report

    start = time.perf_counter()
    results = run_jobs(config, llm, workers, progress)
    wall = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / RESULTS, [r.row for r in results], config.report_budgets())
    curves = assemble(config, results, wall, workers)
    write_curves(out / CURVES, curves)
    write_report(out)
    return curves
