"""The ask/tell loop the strategy tests drive a strategy with (one proposal per ask)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def drive(strategy: Any, mask: Any, steps: int, fitness: Callable[[Any], float | None]) -> list[Any]:
    """Ask for one architecture ``steps`` times (stopping when the region is exhausted), tell each its
    ``fitness``, and return the proposals in order."""
    proposed = []
    for _ in range(steps):
        batch = strategy.ask(mask, 1)
        if not batch:
            break
        g = batch[0]
        proposed.append(g)
        strategy.tell([(g, fitness(g))])
    return proposed
