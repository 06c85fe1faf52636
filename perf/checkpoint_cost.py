"""What durability costs: wall time per evaluation of a budget-100 NB201 run with and without checkpoints.

Three ways to run the same thing (offline reasoner, tabular evaluation, one process, interleaved
repeats, median reported):

* ``no run dir``: the graph alone, nothing written;
* ``files only``: a run directory (config, trials, decisions, principles, masks, summary), no
  checkpointer and no evaluation cache (``execute(..., checkpoint=False)``);
* ``durable``: the default for a run directory: SQLite checkpoint after every superstep
  (``durability="sync"``), the evaluation cache, the run lock.

Also reported: supersteps per evaluation, the size of checkpoints.sqlite with and without pruning of
old checkpoints, and CPU time (less sensitive than wall time to other load on the machine).

Run: ``python perf/checkpoint_cost.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

BUDGET = 100


def one_run(mode: str, root: Path, i: int) -> tuple[float, float, Path | None]:
    from lapt.api import execute, resolve_settings

    settings, space = resolve_settings(space="nb201", sources=["cifar10"], target="cifar100", budget=BUDGET, seed=i)
    run_dir: Path | bool = False if mode == "no run dir" else root / f"{mode.replace(' ', '_')}{i}"
    wall, cpu = time.perf_counter(), time.process_time()
    result = execute(settings, space, run_dir=run_dir, checkpoint=mode == "durable")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert len(result.trials) == BUDGET
    return wall, cpu, result.run_dir


def checkpoint_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("LANGSMITH_TRACING", "false")
    from lapt.graph import durable

    modes = ("no run dir", "files only", "durable")
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="lapt_ckpt_cost_") as tmp:
        root = Path(tmp)
        one_run("durable", root, 999)  # warm-up: imports, table loading, prompt files
        for i in range(args.repeats):
            for mode in modes:
                wall, cpu, _ = one_run(mode, root, i)
                times[mode].append((wall, cpu))
        _, _, pruned = one_run("durable", root, 1000)
        durable.PRUNE_EVERY = 0
        _, _, unpruned = one_run("durable", root, 1001)
        durable.PRUNE_EVERY = 16
        assert pruned is not None and unpruned is not None
        supersteps = checkpoint_rows(unpruned / durable.CHECKPOINTS)
        sizes = {
            "pruned": (pruned / durable.CHECKPOINTS).stat().st_size,
            "unpruned": (unpruned / durable.CHECKPOINTS).stat().st_size,
        }

    def per_eval(mode: str, k: int) -> float:
        return 1000 * statistics.median(t[k] for t in times[mode]) / BUDGET

    print(f"budget-{BUDGET} NB201 run, median of {args.repeats} (ms per evaluation)")
    print(f"{'mode':<12} {'wall':>8} {'cpu':>8}")
    for mode in modes:
        print(f"{mode:<12} {per_eval(mode, 0):>8.2f} {per_eval(mode, 1):>8.2f}")
    extra = [per_eval("durable", k) - per_eval("files only", k) for k in (0, 1)]
    print(f"durability costs {extra[0]:.2f} ms wall ({extra[1]:.2f} ms cpu) per evaluation; "
          f"{supersteps} checkpoints for {BUDGET} evaluations ({supersteps / BUDGET:.2f} per evaluation)")
    print(f"checkpoints.sqlite after the run: {sizes['pruned'] / 1e6:.1f} MB keeping the latest "
          f"(pruned every {durable.PRUNE_EVERY} saves), {sizes['unpruned'] / 1e6:.1f} MB keeping all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
