"""Search metrics of the paper's protocol. Selection is always by validation; test is only reported."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lapt.schemas import Trial


def incumbent_curve(trials: Sequence[Trial]) -> list[Trial | None]:
    """After each evaluation, the best trial so far by validation metric (None until one succeeds)."""
    best: Trial | None = None
    out: list[Trial | None] = []
    for t in trials:
        f = t.fitness
        if f is not None and (best is None or f > (best.val or -np.inf)):
            best = t
        out.append(best)
    return out


def evals_to_reach(trials: Sequence[Trial], threshold: float) -> int | None:
    """1-based number of evaluations after which the incumbent's validation metric >= ``threshold``."""
    for i, best in enumerate(incumbent_curve(trials), start=1):
        if best is not None and best.val is not None and best.val >= threshold:
            return i
    return None


def thresholds(values: np.ndarray, top_fraction: float = 0.001) -> tuple[float, float]:
    """(global optimum, top-``top_fraction`` threshold) of a task's validation column."""
    vals = np.asarray(values, dtype=float)
    vals = vals[~np.isnan(vals)]
    k = max(1, int(np.ceil(top_fraction * vals.size)))
    return float(vals.max()), float(np.sort(vals)[-k])


def paper_metric(trials: Sequence[Trial], values: np.ndarray, budget: int) -> tuple[int, str]:
    """The paper's NB201 metric: evaluations until the global optimum, else the top-0.1 %, else the budget.

    Returns:
        (evaluations, which): ``which`` is "optimum", "top0.1%" or "budget".
    """
    optimum, top = thresholds(values)
    n = evals_to_reach(trials, optimum)
    if n is not None:
        return n, "optimum"
    n = evals_to_reach(trials, top)
    if n is not None:
        return n, "top0.1%"
    return budget, "budget"
