"""Wall time of a training-based LAPT run per executor, and Ray's scheduling overhead per trial.

    python perf/executor_speedup.py                       # budget 24, local vs processes vs ray
    python perf/executor_speedup.py --budget 64 --executors local,processes
    python perf/executor_speedup.py --executors local:1,processes --skip-tabular   # same threads per trial

Part 1 runs the same search (NB201 on MNIST-5k, tiny networks, 1 epoch, batch of 4 candidates) once per
executor and reports wall times (including worker or Ray start-up) and speed-ups over the first one listed. Part 2
times tabular evaluations, which cost microseconds, so what remains is the executor's own overhead:
one job at a time (latency) and a batch of jobs (throughput), against the local executor.
Ray is started on 127.0.0.1 only, with usage statistics off. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("LANGSMITH_TRACING", "false")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback-only Ray (see ray_cluster.py)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def training_run(label: str, args: argparse.Namespace) -> dict[str, Any]:
    """One full LAPT run evaluated by training; wall time includes start-up.

    ``label`` is an executor name, optionally with ``:T`` to fix torch threads per trial (``local:1``
    separates the gain of running trials in parallel from the gain of one thread per small network).
    """
    from lapt.api import execute, resolve_settings
    from lapt.runs.config import TrainSettings
    from lapt.tools.train_adapter import make_training_evaluator

    executor, _, threads = label.partition(":")
    train = TrainSettings(
        dataset="mnist5k", epochs=args.epochs, net={"C": args.channels, "N": args.cells},
        max_train_images=args.max_train_images,
    )
    start = time.perf_counter()
    # (lapt.run's ``evaluator`` argument is an evaluator object, so the settings go through resolve_settings)
    settings, space = resolve_settings(
        space="nb201", sources=["cifar10"], target="mnist5k", budget=args.budget, seed=args.seed,
        batch_size=args.batch_size, evaluator="train", train=train, executor=executor,
        workers=None if executor == "local" else args.workers,
    )
    # ``local:T`` fixes the torch threads per trial: an evaluator object built with them
    evaluator = make_training_evaluator(train, "nb201", num_threads=int(threads)) if threads else None
    result = execute(settings, space, evaluator=evaluator)
    wall = time.perf_counter() - start
    trials = result.trials
    return {
        "wall_s": round(wall, 2),
        "graph_s": result.summary["wall_s"],
        "trials": len(trials),
        "failed": sum(t.status.value == "failed" for t in trials),
        "train_s_sum": round(sum(t.cost_s for t in trials), 2),
        "best_val": result.summary["best"]["val"] if result.summary["best"] else None,
        "archs": [t.arch for t in trials],
        "vals": [t.val for t in trials],
    }


def overhead(executor_name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Per-trial time of tabular jobs: one at a time, then as one batch (workers warmed up first)."""
    from lapt.spaces import get_space
    from lapt.tools.executors import Job, make_executor, table_spec

    space = get_space("nb201")
    archs = [space.to_str(g) for g in list(space.enumerate())[: args.tabular_jobs]]
    jobs = [Job("nb201", a, "cifar100", table_spec("nb201")) for a in archs]
    start = time.perf_counter()
    ex = make_executor(executor_name, None if executor_name == "local" else args.workers)
    try:
        ex.map(jobs[: 2 * max(1, ex.workers)])  # every worker builds its table before timing
        ready = time.perf_counter() - start
        t0 = time.perf_counter()
        for job in jobs[: args.latency_jobs]:
            ex.run(job)
        latency = (time.perf_counter() - t0) / args.latency_jobs
        t0 = time.perf_counter()
        out = ex.map(jobs)
        batch = (time.perf_counter() - t0) / len(jobs)
    finally:
        ex.close()
    if any(o.status != "ok" for o in out):
        raise RuntimeError(f"{executor_name}: a tabular job failed: {next(o for o in out if o.status != 'ok')}")
    return {
        "startup_s": round(ready, 2),
        "latency_ms": round(1e3 * latency, 3),
        "per_job_in_batch_ms": round(1e3 * batch, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=24, help="evaluations per run (default 24; 64 takes ~3x longer)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--executors", default="local,processes,ray")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--cells", type=int, default=1)
    p.add_argument("--max-train-images", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tabular-jobs", type=int, default=400)
    p.add_argument("--latency-jobs", type=int, default=100)
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--skip-tabular", action="store_true")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.executors.split(",") if n.strip()]
    report: dict[str, Any] = {"cores": os.cpu_count(), "load_before": os.getloadavg(), "settings": vars(args)}
    if not args.skip_training:
        runs = {}
        for name in names:
            runs[name] = training_run(name, args)
            print(f"{name}: {runs[name]['wall_s']} s", file=sys.stderr)
        base = runs[names[0]]  # the baseline: the first executor listed
        for r in runs.values():
            r["speedup_vs_baseline"] = round(base["wall_s"] / r["wall_s"], 2)
            r["same_archs_as_baseline"] = r["archs"] == base["archs"]
            r["same_vals_as_baseline"] = r["vals"] == base["vals"]
        for r in runs.values():
            del r["archs"], r["vals"]
        report["baseline"] = names[0]
        report["training"] = runs
    if not args.skip_tabular:
        executors = dict.fromkeys(n.partition(":")[0] for n in names)
        report["tabular_overhead"] = {name: overhead(name, args) for name in executors}
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
