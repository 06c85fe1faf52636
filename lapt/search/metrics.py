"""Search metrics of the paper's protocol. Selection is always by validation; test is only reported.

Everything that ranks or compares works in *fitness* units: the validation metric oriented so that
higher is better (:attr:`lapt.schemas.Trial.fitness`, :meth:`lapt.tables.base.BenchmarkTable.fitness`), so
that "the optimum" and "a top-0.1 % architecture" mean the same for an accuracy and for a loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lapt.schemas import Trial

FIXED_BELOW = 1e9
"""Metric values at least this large print in scientific notation: a fixed-point 1.6e308 is 309 digits,
and no accuracy, loss or latency a person reads has ten digits before the point."""


def metric_str(value: float, places: int = 4) -> str:
    """``value`` as result lines print it: ``places`` decimals, or, beyond :data:`FIXED_BELOW`, scientific
    notation with as many significant digits (``1.6e+308``)."""
    if abs(value) >= FIXED_BELOW:
        return f"{value:.{places}g}"
    return f"{value:.{places}f}"


def incumbent_curve(trials: Sequence[Trial]) -> list[Trial | None]:
    """After each evaluation, the best trial so far by fitness (None until one succeeds)."""
    best: Trial | None = None
    out: list[Trial | None] = []
    for t in trials:
        f = t.fitness
        if f is not None and (best is None or f > (best.fitness if best.fitness is not None else -np.inf)):
            best = t
        out.append(best)
    return out


def evals_to_reach(trials: Sequence[Trial], threshold: float) -> int | None:
    """1-based number of evaluations after which the incumbent's fitness >= ``threshold`` (fitness units)."""
    for i, best in enumerate(incumbent_curve(trials), start=1):
        if best is not None and best.fitness is not None and best.fitness >= threshold:
            return i
    return None


def thresholds(fitness: np.ndarray, top_fraction: float = 0.001) -> tuple[float, float]:
    """(global optimum, top-``top_fraction`` threshold) of a task's fitness column (NaN: unmeasured)."""
    vals = np.asarray(fitness, dtype=float)
    vals = vals[~np.isnan(vals)]
    k = max(1, int(np.ceil(top_fraction * vals.size)))
    return float(vals.max()), float(np.sort(vals)[-k])


def paper_metric(trials: Sequence[Trial], fitness: np.ndarray, budget: int) -> tuple[int, str]:
    """The paper's NB201 metric: evaluations until the global optimum, else the top-0.1 %, else the budget.

    Args:
        trials: the run's trials, in order.
        fitness: the target's fitness column (:meth:`lapt.tables.base.BenchmarkTable.fitness`).
        budget: the run's budget.

    Returns:
        (evaluations, which): ``which`` is "optimum", "top0.1%" or "budget".
    """
    optimum, top = thresholds(fitness)
    n = evals_to_reach(trials, optimum)
    if n is not None:
        return n, "optimum"
    n = evals_to_reach(trials, top)
    if n is not None:
        return n, "top0.1%"
    return budget, "budget"


def incumbent_at(trials: Sequence[Trial], n: int) -> Trial | None:
    """The incumbent after the first ``n`` evaluations (after all of them when the run stopped earlier).

    Smaller budgets are read off one run of the largest budget this way, because the incumbent at
    evaluation ``n`` does not depend on what came later; a run that ended early (its region exhausted)
    keeps its last incumbent, which is what it would have returned.
    """
    curve = incumbent_curve(trials[: max(0, n)])
    return curve[-1] if curve else None


def reported_metric(trial: Trial | None) -> float | None:
    """What a table reports for a selected trial: test where the benchmark has it, else validation.

    TransNAS-Bench-101 publishes no test column, so its reports fall back to validation (and say so).
    """
    if trial is None:
        return None
    return trial.test if trial.test is not None else trial.val


@dataclass(frozen=True)
class PaperOutcome:
    """The paper's NB201 protocol for one run: when the search got there, and what it had then.

    Attributes:
        evaluations: evaluations until the optimum, else the top-0.1 % threshold, else the budget.
        reached: "optimum", "top0.1%" or "budget".
        incumbent: the best trial (by fitness) after ``evaluations`` evaluations.
    """

    evaluations: int
    reached: str
    incumbent: Trial | None


def paper_outcome(trials: Sequence[Trial], fitness: np.ndarray, budget: int) -> PaperOutcome:
    """:func:`paper_metric` plus the incumbent at that point (whose test metric the paper reports)."""
    n, which = paper_metric(trials, fitness, budget)
    return PaperOutcome(evaluations=n, reached=which, incumbent=incumbent_at(trials, n))


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(mean, standard deviation, count) of the given values, ignoring missing ones.

    The deviation is numpy's default (ddof=0, the spread of the seeds actually run); (nan, nan, 0) when
    nothing is left.
    """
    arr = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    return float(arr.mean()), float(arr.std()), int(arr.size)
