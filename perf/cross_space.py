"""Cross-space transfer on TransNAS-Bench-101 micro (issue: bring your own space / principle library).

Run: ``python perf/cross_space.py``. For class_scene, class_object and room_layout, budget 50, 10 seeds:
LAPT seeded with principles learned on NAS-Bench-201 CIFAR-10 (ops unknown to TNB101 dropped), LAPT with
principles learned on jigsaw (same space), and REA in the full space. Prints the mean +- std of the
best validation metric found (TNB101 publishes validation only) and the mean rank of the final incumbent.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import lapt
from lapt.agents.learner import SourceData, make_principle_learner
from lapt.agents.offline import OfflineReasoner
from lapt.agents.prompts import load_prompts
from lapt.principles.cross_space import transfer_principles
from lapt.spaces import get_space
from lapt.strategies import make_strategy
from lapt.tables.builtin import load_table

TARGETS = ("class_scene", "class_object", "room_layout")


def nb201_principles() -> lapt.schemas.PrincipleSet:
    """Principles learned on NB201 CIFAR-10 by the offline miner, transferred to TNB101."""
    nb201 = get_space("nb201")
    table = load_table("nb201")
    learn = make_principle_learner(OfflineReasoner(), load_prompts())
    out = learn(nb201, [SourceData("cifar10", tuple(nb201.enumerate()), table.values("cifar10"))])
    assert out.value is not None
    pset, report = transfer_principles(out.value, get_space("tnb101"))
    print(f"cross-space transfer report: {report}")
    return pset


def rea(target: str, budget: int, seed: int) -> float:
    """Best validation metric of plain REA (10/5) in the full TNB101 space."""
    space = get_space("tnb101")
    table = load_table("tnb101")
    strategy = make_strategy("rea", space, seed, population=10, tournament=5)
    best = -np.inf
    for _ in range(budget):
        (g,) = strategy.ask(space.full_mask(), 1)
        v = table.lookup(g, target).val
        best = max(best, v)
        strategy.tell([(g, v)])
    return float(best)


def main() -> None:
    """Print the comparison table."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args()
    cross = nb201_principles()
    table = load_table("tnb101")
    print(f"\nTNB101 micro, budget {args.budget}, {args.seeds} seeds: best validation metric found (mean +- std)")
    header = f"{'target':<14}{'NB201 cifar10 (cross-space)':>30}{'jigsaw (same space)':>24}"
    print(f"{header}{'REA full space':>20}{'optimum':>10}")
    for target in TARGETS:
        cols = []
        for method in ("cross", "jigsaw", "rea"):
            vals = []
            for seed in range(args.seeds):
                if method == "rea":
                    vals.append(rea(target, args.budget, seed))
                    continue
                kwargs = {"initial_principles": cross} if method == "cross" else {}
                sources = [] if method == "cross" else ["jigsaw"]
                r = lapt.run(space="tnb101", sources=sources, target=target, budget=args.budget, seed=seed, **kwargs)
                vals.append(r.summary["best"]["val"])
            cols.append(f"{statistics.mean(vals):.3f} +- {statistics.stdev(vals):.3f}")
        optimum = float(table.values(target).max())
        print(f"{target:<14}{cols[0]:>30}{cols[1]:>24}{cols[2]:>20}{optimum:>10.3f}")


if __name__ == "__main__":
    main()
