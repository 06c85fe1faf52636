"""How much of LAPT's lead is its search rather than its principles: REA with and without the neighbour check.

Run: ``python perf/neighbour_check.py [--seeds 30]``. LAPT searches its region with REA wrapped in
:class:`~lapt.strategies.escape.RegionEscape`, which (among other things) checks a standing incumbent's
neighbours. The bench's REA baseline is plain REA. This runs both in the *full* space (where the wrapper
never steps outside and has no evidence weights, so the neighbour check is the only difference) on every
table task, at the bench's budgets (20 on NB201, 50 on TNB101), with the spaces' REA settings and the same
seeds, and prints the mean best validation metric of each and Welch's t of the wrapped one against plain REA.

If the check alone explained LAPT's lead over REA, these t values would be as large as the bench's; they are
not (see the README), so the lead comes from the region.
"""

from __future__ import annotations

import argparse
import math
import statistics

from lapt.spaces.cell import CellSpace
from lapt.strategies import make_strategy
from lapt.strategies.escape import RegionEscape
from lapt.tables.base import BenchmarkTable
from lapt.tables.builtin import load_table

BUDGETS = {"nb201": 20, "tnb101": 50}


def best_found(table: BenchmarkTable, task: str, seed: int, budget: int, wrapped: bool) -> float:
    """The best validation fitness REA (wrapped or not) finds in the full space within ``budget``."""
    space = table.space
    assert isinstance(space, CellSpace)  # the table spaces index their cells
    d = space.defaults
    base = make_strategy("rea", space, seed, population=d.population, tournament=d.tournament)
    strategy = RegionEscape(base) if wrapped else base
    full = space.full_mask()
    column = table.fitness(task)  # higher is better on every task
    best = -math.inf
    for _ in range(budget):
        g = strategy.ask(full, 1)[0]
        fitness = float(column[space.index(g)])
        if math.isnan(fitness):  # unmeasured in the table: a failed evaluation
            strategy.tell([(g, None)])
            continue
        strategy.tell([(g, fitness)])
        best = max(best, fitness)
    return best


def welch(a: list[float], b: list[float]) -> float:
    """Welch's t of ``a`` against ``b`` (population variances, as the bench uses)."""
    var = statistics.pvariance(a) / len(a) + statistics.pvariance(b) / len(b)
    return (statistics.mean(a) - statistics.mean(b)) / math.sqrt(var) if var > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    args = parser.parse_args()
    for name, budget in BUDGETS.items():
        table = load_table(name)
        print(f"{name}, full space, budget {budget}, {args.seeds} seeds: best validation fitness")
        print(f"  {'task':<18}{'REA':>10}{'REA + check':>13}{'t':>7}")
        for task in table.tasks:
            plain = [best_found(table, task, s, budget, False) for s in range(args.seeds)]
            wrapped = [best_found(table, task, s, budget, True) for s in range(args.seeds)]
            t = welch(wrapped, plain)
            print(f"  {task:<18}{statistics.mean(plain):>10.4f}{statistics.mean(wrapped):>13.4f}{t:>+7.1f}")


if __name__ == "__main__":
    main()
