"""Regularized evolution (Real et al., 2019), as used by LAPT's released code.

The first ``population`` proposals are random; after that each proposal mutates the best of
``tournament`` members drawn from the population, and the oldest member dies when a child joins.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from lapt.spaces import Genotype, MaskSpec, SearchSpace
from lapt.strategies.base import Strategy

MUTATION_TRIES = 32


class RegularizedEvolution(Strategy):
    """REA with an aging population; children never repeat an architecture."""

    name = "rea"

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 5, tournament: int = 2):
        if population < 1 or not 1 <= tournament <= population:
            raise ValueError(f"need population >= 1 and 1 <= tournament <= population, got {population}/{tournament}")
        super().__init__(space, seed)
        self.population_size = population
        self.tournament = tournament
        self.population: deque[tuple[Genotype, float]] = deque()

    def _propose(self, mask: MaskSpec) -> Genotype | None:
        if len(self.population) < self.population_size:
            return self.sample_unseen(mask)
        pop = self.population
        rng = self.rng
        space = self.space
        contenders = rng.sample(range(len(pop)), self.tournament)
        parent = pop[max(contenders, key=lambda i: pop[i][1])][0]
        for _ in range(MUTATION_TRIES):
            child = space.mutate(parent, mask, rng)
            if space.key(child) not in self._seen:
                return child
        # Every nearby child was seen (or no layer has a second op): fall back to a fresh sample.
        return self.sample_unseen(mask)

    def _observe(self, genotype: Genotype, fitness: float | None) -> None:
        if fitness is None:
            return
        self.population.append((genotype, fitness))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def _extra_state(self) -> dict[str, Any]:
        return {
            "population_size": self.population_size,
            "tournament": self.tournament,
            "population": [[self.space.to_str(g), f] for g, f in self.population],
        }

    def _load_extra(self, extra: dict[str, Any]) -> None:
        self.population_size = extra["population_size"]
        self.tournament = extra["tournament"]
        self.population = deque((self.space.parse(a), f) for a, f in extra["population"])
