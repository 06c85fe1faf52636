"""Run a bench: every job in a process pool, then the data files, then the report.

Each job is one (method, pair, seed) and depends on nothing but its arguments, so jobs run in any
order on any worker and the results, sorted back into plan order, are identical for any number of
workers. Workers are started with ``forkserver`` (``spawn`` where that is missing), never ``fork``:
the parent may hold threads (tqdm, LangChain executors) that a forked child would inherit half-way.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
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
from lapt.experiments.journal import BenchJournal, job_key
from lapt.experiments.methods import JobResult, bench_table, oracle_region, run_job
from lapt.experiments.plan import LAPT_METHODS, BenchConfig, Job, plan_jobs, space_label
from lapt.spaces import MaskSpec

# Rough relative cost of a job, to start the slow ones first and keep every worker busy to the end.
_COST = {"lapt": 10, "lapt-offline": 10, "lapt-transfer": 4, "rea": 1, "random": 1, "rea-oracle": 1}


WATCH_S = 0.2
"""How often a bench worker checks that its bench is still there."""


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for its parent to collect it counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].startswith(("Z", "X"))


def _watch_bench(pid: int) -> None:
    """Runs first in every worker: exit as soon as the bench process ``pid`` is gone.

    A bench killed with SIGKILL runs no clean-up, and its workers (children of the forkserver, not of
    the bench) would run their jobs on for nobody, taking the cores from the bench that continues it.
    """

    def watch() -> None:
        while not _gone(pid):
            time.sleep(WATCH_S)
        os._exit(1)

    threading.Thread(target=watch, name="lapt-bench-watch", daemon=True).start()


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # The server imports the bench once; each worker forks from it instead of importing LangGraph anew.
        ctx.set_forkserver_preload(["lapt.experiments.methods"])
        return ctx
    return multiprocessing.get_context("spawn")


def run_jobs(
    config: BenchConfig, llm: Any = None, workers: int = 1, progress: bool = True, journal: BenchJournal | None = None
) -> list[JobResult]:
    """Run every job of ``config`` and return the results in plan order (pair, method, seed).

    With a ``journal``, jobs it already holds are not run again, and each new result is written to it
    the moment it comes in (before the next is taken), so that a killed bench keeps what it finished.
    """
    from tqdm import tqdm

    jobs = plan_jobs(config)
    results: dict[Job, JobResult] = {}
    if journal is not None:
        results = {j: journal.done[job_key(j)] for j in jobs if job_key(j) in journal.done}
    todo = [j for j in jobs if j not in results]

    def finished(job: Job, result: JobResult) -> None:
        if journal is not None:
            journal.record(job, result)
        results[job] = result
        bar.update(1)

    bar = tqdm(total=len(jobs), initial=len(results), desc=f"bench {space_label(config.space)}", unit="run",
               disable=not progress)
    try:
        if workers <= 1 or not todo:
            for job in todo:
                finished(job, run_job(job, config, llm))
        else:
            order = sorted(todo, key=lambda j: -_COST[j.method])
            with ProcessPoolExecutor(
                max_workers=min(workers, len(todo)), mp_context=_context(), initializer=_watch_bench,
                initargs=(os.getpid(),),
            ) as pool:
                futures: dict[Future[JobResult], Job] = {pool.submit(run_job, j, config, llm): j for j in order}
                try:
                    for fut in as_completed(futures):
                        finished(futures[fut], fut.result())
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


def assemble(
    config: BenchConfig, results: list[JobResult], wall_s: float, workers: int, continued_runs: int = 0
) -> CurvesFile:
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
        continued_runs=continued_runs,
        references=refs,
        oracle=oracle,
        curves=curves,
        masks=masks,
    )


def run_bench(
    config: BenchConfig,
    out: Path,
    llm: Any = None,
    workers: int = 1,
    progress: bool = True,
    journal: BenchJournal | None = None,
) -> CurvesFile:
    """Run the bench (what ``journal`` does not hold yet) and write ``results.csv``, ``curves.json``,
    ``summary.md`` and the plots to ``out``."""
    from lapt.experiments.report import write_report

    start = time.perf_counter()
    continued = 0 if journal is None else len(journal.done)
    results = run_jobs(config, llm, workers, progress, journal)
    wall = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    write_results(out / RESULTS, [r.row for r in results], config.report_budgets())
    curves = assemble(config, results, wall, workers, continued)
    write_curves(out / CURVES, curves)
    write_report(out)
    return curves
