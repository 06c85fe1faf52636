"""What a durable run costs per evaluation, at a short and a long budget, against a plain search loop.

Runs, in one process and one after the other (so the machine's load is shared alike):

* a plain ask/tell loop: REA over the NB201 table with the run's population and tournament, one table
  lookup per evaluation, nothing else (the floor every orchestration adds to);
* ``lapt run`` as the command line runs it (``lapt.api.execute`` with a run directory: lock, SQLite
  checkpoint after every step, evaluation cache, trace file, principle library, the record files),
  NB201 cifar10 -> cifar100 with the offline reasoner, at ``--short`` and ``--long`` evaluations.

Reported: ms per evaluation of each, the ratio long/short (target <= 1.3: the cost per evaluation does
not grow with the run), the orchestration cost per evaluation above the plain loop at the long budget
(target <= 5 ms), and the run directory's size per evaluation at the long budget (target <= 5 KB),
with the share of each file.

Run: ``python perf/run_cost.py`` (defaults 200 and 2,000; about a minute on 2 idle cores).
``--json`` prints one machine-readable line instead.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LANGSMITH_TRACING", "false")


def plain_loop(budget: int, seed: int) -> tuple[float, float]:
    """Seconds for ``budget`` REA ask/evaluate/tell steps over the NB201 table (no graph, no files)."""
    from lapt.runs.config import resolve_settings
    from lapt.strategies import make_strategy
    from lapt.tables.builtin import load_table
    from lapt.tools.evaluation import TabularEvaluator, evaluate_trial

    settings, space = resolve_settings(space="nb201", sources=["cifar10"], target="cifar100", budget=budget, seed=seed)
    evaluator = TabularEvaluator(load_table("nb201"))
    strategy = make_strategy("rea", space, seed, population=settings.population, tournament=settings.tournament)
    mask = space.full_mask()
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(budget):
        (g,) = strategy.ask(mask, 1)
        trial = evaluate_trial(evaluator, space, space.to_str(g), "cifar100", i, 0)
        strategy.tell([(g, trial.fitness)])
    return time.perf_counter() - start, time.process_time() - cpu


def durable_run(budget: int, seed: int, root: Path) -> tuple[float, float, dict[str, int]]:
    """Seconds (wall, CPU of all threads) for one durable run of ``budget`` evaluations, and the bytes of
    each file of its folder."""
    from lapt.api import execute
    from lapt.runs.config import resolve_settings

    settings, space = resolve_settings(space="nb201", sources=["cifar10"], target="cifar100", budget=budget, seed=seed)
    run_dir = root / f"run-{budget}"
    start, cpu = time.perf_counter(), time.process_time()
    result = execute(settings, space, run_dir=run_dir, store=str(root / "library.sqlite"))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert len(result.trials) == budget, len(result.trials)
    sizes: dict[str, int] = {}
    for path in run_dir.rglob("*"):
        if path.is_file():
            top = path.relative_to(run_dir).parts[0]
            key = top if path.parent == run_dir else f"{top}/"
            sizes[key] = sizes.get(key, 0) + path.stat().st_size
    return wall, cpu, sizes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--short", type=int, default=200, help="the short budget (default 200)")
    p.add_argument("--long", type=int, default=2000, help="the long budget (default 2,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON line")
    args = p.parse_args()

    durable_run(20, args.seed, Path(tempfile.mkdtemp(prefix="lapt-warm-")))  # imports, tables, first compile
    root = Path(tempfile.mkdtemp(prefix="lapt-run-cost-"))
    load = os.getloadavg()[0]
    loop_s, loop_cpu = plain_loop(args.long, args.seed)
    short_s, short_cpu, _ = durable_run(args.short, args.seed, root)
    long_s, long_cpu, sizes = durable_run(args.long, args.seed, root)
    per = {
        "plain_loop_ms": 1000 * loop_s / args.long,
        "short_ms": 1000 * short_s / args.short,
        "long_ms": 1000 * long_s / args.long,
        "plain_loop_cpu_ms": 1000 * loop_cpu / args.long,
        "short_cpu_ms": 1000 * short_cpu / args.short,
        "long_cpu_ms": 1000 * long_cpu / args.long,
    }
    total = sum(sizes.values())
    out: dict[str, Any] = {
        **{k: round(v, 3) for k, v in per.items()},
        "ratio_long_short": round(per["long_ms"] / per["short_ms"], 3),
        "orchestration_ms": round(per["long_ms"] - per["plain_loop_ms"], 3),
        "run_dir_bytes_per_eval": round(total / args.long),
        "files": {k: v for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])},
        "load_average": round(load, 2),
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"machine load average when it started: {out['load_average']} (the figures are for an idle machine)")
    print(f"plain ask/tell loop (REA, NB201 table): {out['plain_loop_ms']:.3f} ms per evaluation")
    for label, key in ((f"budget {args.short:>6,}", "short"), (f"budget {args.long:>6,}", "long")):
        print(
            f"durable run, {label}: {out[key + '_ms']:.2f} ms per evaluation "
            f"(CPU of all threads: {out[key + '_cpu_ms']:.2f} ms)"
        )
    print(f"ratio {args.long:,} / {args.short:,}: {out['ratio_long_short']:.2f}   target <= 1.3")
    print(f"orchestration above the plain loop: {out['orchestration_ms']:.2f} ms per evaluation   target <= 5")
    print(f"run directory at {args.long:,}: {total / 1e6:.2f} MB, {out['run_dir_bytes_per_eval']:,} B per evaluation"
          "   target <= 5,120")
    for name, size in out["files"].items():
        print(f"  {name:<22} {size / 1e3:>10.1f} KB  {100 * size / total:5.1f} %")


if __name__ == "__main__":
    main()
