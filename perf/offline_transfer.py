"""Offline-reasoner transfer on NAS-Bench-201, and the graph's orchestration overhead.

Run: ``python perf/offline_transfer.py``. Prints, for each of the 6 source->target pairs (budget 20,
10 seeds): the mean test accuracy of the final incumbent (selected by validation), the gap to the
ceiling (test accuracy of the best-by-validation cell: 94.37 / 73.51 / 46.20), and the mean number of
evaluations until the incumbent is a top-0.1 % cell (by validation; runs that never get there count as
the budget). Then the wall time of a budget-100 tabular run through the graph versus the same strategy
(REA, same seed) in a plain loop, in one process, as a per-evaluation overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time

import lapt
from lapt.search.metrics import thresholds
from lapt.spaces import get_space
from lapt.strategies import make_strategy
from lapt.tables.builtin import load_table

TASKS = ("cifar10", "cifar100", "ImageNet16-120")


def transfer(budget: int, seeds: int) -> None:
    """The per-pair table."""
    table = load_table("nb201")
    print(f"offline reasoner, NB201, budget {budget}, {seeds} seeds")
    print(f"{'source -> target':<28}{'mean test':>10}{'ceiling':>9}{'gap':>7}{'evals to top-0.1%':>19}")
    for src in TASKS:
        for tgt in TASKS:
            if src == tgt:
                continue
            best, _ = table.top(tgt, 1)[0]
            ceiling = table.lookup(best, tgt).test or 0.0
            tests, reach = [], []
            for seed in range(seeds):
                r = lapt.run(space="nb201", sources=[src], target=tgt, budget=budget, seed=seed)
                tests.append(r.summary["best"]["test"])
                n = r.summary["evals_to_top0.1%"]
                reach.append(budget if n is None else n)
            mean = statistics.mean(tests)
            print(f"{src + ' -> ' + tgt:<28}{mean:>10.2f}{ceiling:>9.2f}{ceiling - mean:>7.2f}"
                  f"{statistics.mean(reach):>19.1f}")


def overhead(budget: int) -> None:
    """Graph vs plain loop, same strategy and seed, in one run."""
    space = get_space("nb201")
    table = load_table("nb201")
    optimum, _ = thresholds(table.values("cifar100"))
    r = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=budget, seed=0, adapt=False)
    mask = lapt.transfer.masks.to_spec(space, lapt.transfer.masks.mask_model(space)(**r.masks[0]["mask"]))
    graph_times, loop_times = [], []
    for _ in range(3):
        start = time.perf_counter()
        lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=budget, seed=0, adapt=False,
                 max_ops=5)
        graph_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        strategy = make_strategy("rea", space, 0, population=5, tournament=2)
        for _ in range(budget):
            (g,) = strategy.ask(space.full_mask(), 1)
            strategy.tell([(g, table.lookup(g, "cifar100").val)])
        loop_times.append(time.perf_counter() - start)
    g, loop = min(graph_times), min(loop_times)
    print(f"\nbudget-{budget} run: graph {g * 1000:.0f} ms, plain loop {loop * 1000:.1f} ms "
          f"-> orchestration overhead {(g - loop) / budget * 1000:.2f} ms per evaluation (target < 5 ms)")
    del mask, optimum


def main() -> None:
    """Both measurements."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args()
    transfer(args.budget, args.seeds)
    overhead(100)


if __name__ == "__main__":
    main()
