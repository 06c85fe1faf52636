"""Search strategies by name."""

from __future__ import annotations

from typing import Any

from lapt.errors import UserError
from lapt.spaces import SearchSpace
from lapt.strategies.base import Strategy
from lapt.strategies.local_search import LocalSearch
from lapt.strategies.random_search import RandomSearch
from lapt.strategies.rea import RegularizedEvolution

STRATEGIES: dict[str, type[Strategy]] = {
    "rea": RegularizedEvolution,
    "random": RandomSearch,
    "local": LocalSearch,
}


def make_strategy(name: str, space: SearchSpace, seed: int = 0, **params: Any) -> Strategy:
    """Build a strategy; REA takes ``population`` and ``tournament``."""
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    cls = STRATEGIES[name]
    if cls is not RegularizedEvolution:
        params = {}
    return cls(space, seed, **params)


__all__ = ["STRATEGIES", "LocalSearch", "RandomSearch", "RegularizedEvolution", "Strategy", "make_strategy"]
