"""Local search: move to a better one-change neighbour; restart at random from a local optimum."""

from __future__ import annotations

from typing import Any

from lapt.spaces import Genotype, MaskSpec
from lapt.strategies.base import Strategy

NEIGHBOUR_TRIES = 48


class LocalSearch(Strategy):
    """First-improvement hill climbing over single-choice mutations, with random restarts."""

    name = "local"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.current: tuple[Genotype, float] | None = None

    def _propose(self, mask: MaskSpec) -> Genotype | None:
        if self.current is not None:
            for _ in range(NEIGHBOUR_TRIES):
                g = self.space.mutate(self.current[0], mask, self.rng)
                if not self.is_seen(g):
                    return g
            self.current = None  # no unseen neighbour found: a local optimum, restart
        return self.sample_unseen(mask)

    def _observe(self, genotype: Genotype, fitness: float | None) -> None:
        if fitness is not None and (self.current is None or fitness > self.current[1]):
            self.current = (genotype, fitness)

    def _extra_state(self) -> dict[str, Any]:
        cur = self.current
        return {"current": None if cur is None else [self.space.to_str(cur[0]), cur[1]]}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        cur = extra.get("current")
        self.current = None if cur is None else (self.space.parse(cur[0]), cur[1])
