"""Stepping outside the refined region, and weighing ops inside it: a wrong principle costs little.

A refined region is a bet that the excluded ops are worse on the target. :class:`RegionEscape` wraps any
ask/tell strategy and changes three things about how it proposes architectures:

* **Outside the region, with a small adaptive probability.** A *probe* is a good architecture found so
  far (a tournament among the parents the strategy keeps, as REA would draw one), projected into the
  region, with one layer switched to an op the region excludes. It tests exactly one exclusion in a good
  context, the cheapest way to learn that a principle was wrong, and its result is target evidence the
  adapter can use to bring the op back. When every probe of every parent was seen, the proposal stays
  inside. Probes start once ``warmup`` evaluations succeeded (REA's population size by default).
* **Inside the region, in proportion to per-op weights** (:attr:`RegionEscape.weights`, set by the caller
  before each ask; the graph derives them from the target evidence, :func:`lapt.transfer.target_evidence.op_weights`).
  The region stays the same; the wrapped strategy samples and mutates with a weighted
  :class:`~lapt.spaces.MaskSpec`. The same weights choose which excluded op a probe tries.
* **Around a standing incumbent.** When the best result so far has stood for
  ``stall`` successful evaluations (REA's population size by default: the evaluations after which REA's
  aging has dropped it from the population, so evolution no longer starts from it), half the proposals
  inside the region (:data:`NEIGHBOUR_SHARE`) are unseen single changes of it, drawn uniformly, until one
  beats it or none is left; the wrapped strategy makes the other half, so exploration goes on. A small
  refined region often holds its best cell one change away from a near-best one that REA's tournaments
  pass over; on NAS-Bench-201 at 20 evaluations this decides whether a search ends at the ceiling.

How often it steps outside adapts to how the outside does compared with the inside. Every evaluation made
after the warm-up is scored as a *win* when its fitness beats the median of the earlier successful ones;
inside and outside keep their own counts under Beta priors (the outside prior, Beta(1, 3), leans towards
losing: the principles start trusted), and the probability is ``P_MIN + (P_MAX - P_MIN) * P(outside rate >
inside rate)``: about 0.1 at first, down to 0.05 when the outside keeps losing, up to 0.3 when it keeps
winning.

The wrapper's own state is small and JSON (its ask count, win counts and the side of the pending
proposals). Its decisions draw from an RNG seeded per ask with ``(seed, ask number)``, as the wrapped
strategy's do, so no generator state is saved. What grows with the run (the successful results, whose
median decides a win, the recent ones a probe may start from, the incumbent and how long it has stood) is
rebuilt from the trial record with
:meth:`RegionEscape.replay`, as the architectures seen are with ``mark_seen``: a restored wrapper continues
exactly.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from lapt.spaces import Genotype, MaskSpec
from lapt.spaces.cell import CellSpace
from lapt.strategies.base import Strategy

P_MIN = 0.05  # never stop testing the region's exclusions entirely
P_MAX = 0.3  # never spend more than about a third of the budget outside the principles' region
OUTSIDE_PRIOR = (1.0, 3.0)  # Beta prior of the outside win rate: the principles start trusted
INSIDE_PRIOR = (1.0, 1.0)
PROBE_TRIES = 32
RECENT_PARENTS = 10  # parents for strategies that keep no population: this many recent results
WIN_QUANTILE = 0.5  # a win beats this quantile of the earlier results
NEIGHBOUR_SHARE = 0.5  # of a stalled search's proposals inside: its incumbent's neighbours (the rest: REA's)


def _beta_mean_var(wins: float, losses: float) -> tuple[float, float]:
    total = wins + losses
    return wins / total, wins * losses / (total * total * (total + 1.0))


def prob_greater(a: tuple[float, float], b: tuple[float, float]) -> float:
    """P(X > Y) for X ~ Beta(*a), Y ~ Beta(*b), by the normal approximation (enough to set a rate)."""
    ma, va = _beta_mean_var(*a)
    mb, vb = _beta_mean_var(*b)
    return 0.5 * (1.0 + math.erf((ma - mb) / math.sqrt(2.0 * (va + vb))))


class RegionEscape:
    """Any strategy plus adaptive probes outside the current region and a check of a standing incumbent's
    neighbours (the same ask/tell/state interface).

    Attributes:
        base: the wrapped strategy; it proposes inside the region (all but a stalled search's neighbour
            checks) and is told every result.
        stall: successful evaluations without a better result after which half the proposals inside are
            the incumbent's unseen neighbours (default: ``warmup``, i.e. the wrapped strategy's population).
        weights: optional ``{layer name: {op: weight}}``: sampling weights inside the region and the choice
            of the excluded op a probe tries (missing entries weigh 1). Not state: the caller sets it before
            each ask (the graph derives it from the target evidence of the last adaptation).
    """

    name = "escape"

    def __init__(
        self,
        base: Strategy,
        *,
        p_min: float = P_MIN,
        p_max: float = P_MAX,
        warmup: int | None = None,
        quantile: float = WIN_QUANTILE,
        stall: int | None = None,
    ):
        if not 0.0 <= p_min <= p_max <= 1.0:
            raise ValueError(f"need 0 <= p_min <= p_max <= 1, got {p_min}/{p_max}")
        if stall is not None and stall < 1:
            raise ValueError(f"need stall >= 1, got {stall}")
        self.base = base
        self.space = base.space
        self.p_min = p_min
        self.p_max = p_max
        self.warmup = warmup if warmup is not None else int(getattr(base, "population_size", 5))
        self.quantile = quantile
        self.asks = 0
        self.rng = random.Random()
        self.inside = [0, 0]  # [evaluations scored, wins]
        self.outside = [0, 0]
        self.pending: dict[str, bool] = {}  # arch string -> proposed outside the region
        self.weights: Mapping[str, Mapping[str, float]] | None = None
        self._fitness: list[float] = []  # every successful result, ascending (rebuilt by replay)
        self._recent: deque[tuple[Genotype, float]] = deque(maxlen=RECENT_PARENTS)
        self.stall = stall if stall is not None else self.warmup
        self._best: tuple[Genotype, float] | None = None  # the incumbent (rebuilt by replay)
        self._since_best = 0  # successful results since the incumbent was found
        self._full = self.space.full_mask()
        self._last_weighted: tuple[Mapping[str, Mapping[str, float]], MaskSpec, MaskSpec] | None = None

    # -- the strategy interface ------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.base.seed

    @property
    def exhausted(self) -> bool:
        """Whether the last ask found the region without an unseen architecture."""
        return self.base.exhausted

    @property
    def seen_count(self) -> int:
        return self.base.seen_count

    @property
    def probability(self) -> float:
        """The current chance that one proposal steps outside the region."""
        a = (OUTSIDE_PRIOR[0] + self.outside[1], OUTSIDE_PRIOR[1] + self.outside[0] - self.outside[1])
        b = (INSIDE_PRIOR[0] + self.inside[1], INSIDE_PRIOR[1] + self.inside[0] - self.inside[1])
        return self.p_min + (self.p_max - self.p_min) * prob_greater(a, b)

    def ask(self, mask: MaskSpec, n: int = 1) -> list[Genotype]:
        """Up to ``n`` unseen architectures; each one is outside ``mask`` with :attr:`probability`."""
        self.rng.seed(f"{self.base.seed}/escape/{self.asks}")
        self.asks += 1
        out: list[Genotype] = []
        to_str = self.space.to_str
        weighted = self._weighted(mask)
        for _ in range(n):
            g = None
            if self._can_escape(mask) and self.rng.random() < self.probability:
                g = self._outside(mask)
                if g is not None:
                    self.base.mark_seen([g])
                    self.pending[to_str(g)] = True
            if g is None and self.stalled and self.rng.random() < NEIGHBOUR_SHARE:
                g = self._neighbour(mask)
                if g is not None:
                    self.base.mark_seen([g])
                    self.pending[to_str(g)] = False
            if g is None:
                inside = self.base.ask(weighted, 1)
                if not inside:
                    break
                g = inside[0]
                self.pending[to_str(g)] = False
            out.append(g)
        return out

    def tell(self, results: Sequence[tuple[Genotype, float | None]]) -> None:
        """Score every result as a win or not against earlier results, then tell the wrapped strategy."""
        for g, fitness in results:
            side = self.pending.pop(self.space.to_str(g), None)
            if side is not None and len(self._fitness) >= self.warmup:
                counts = self.outside if side else self.inside
                counts[0] += 1
                counts[1] += int(fitness is not None and fitness > _quantile(self._fitness, self.quantile))
            self._remember(g, fitness)
        self.base.tell(results)

    def replay(self, results: Sequence[tuple[Genotype, float | None]]) -> None:
        """Rebuild the memory of earlier results from a run's record (no scoring, nothing told)."""
        for g, fitness in results:
            self._remember(g, fitness)

    def _remember(self, g: Genotype, fitness: float | None) -> None:
        if fitness is not None:
            bisect.insort(self._fitness, float(fitness))
            self._recent.append((g, float(fitness)))
            if self._best is None or fitness > self._best[1]:
                self._best = (g, float(fitness))
                self._since_best = 0
            else:
                self._since_best += 1

    @property
    def stalled(self) -> bool:
        """Whether the incumbent has stood for :attr:`stall` successful evaluations (its neighbours come next)."""
        return self._best is not None and self._since_best >= self.stall

    def _neighbour(self, mask: MaskSpec) -> Genotype | None:
        """An unseen single change of the incumbent inside ``mask`` (uniform: the weights favour the
        incumbent's own ops, and this is a check of its neighbourhood); None when the draws find none."""
        assert self._best is not None
        space = self.space
        for _ in range(PROBE_TRIES):
            child = space.mutate(self._best[0], mask, self.rng)
            if space.contains(child, mask) and not self.base.is_seen(child):
                return child
        return None

    def mark_seen(self, genotypes: Sequence[Genotype]) -> None:
        """Record architectures evaluated elsewhere so they are never proposed again."""
        self.base.mark_seen(genotypes)

    def is_seen(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` was proposed or reported before."""
        return self.base.is_seen(genotype)

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state of constant size: the wrapped strategy's, the ask count, the win counts and
        the sides of the pending proposals."""
        return {
            "strategy": self.name,
            "asks": self.asks,
            "base": self.base.state_dict(),
            "inside": list(self.inside),
            "outside": list(self.outside),
            "pending": dict(self.pending),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (earlier results come from :meth:`replay`)."""
        if state.get("strategy") != self.name:
            raise ValueError(f"state is for strategy {state.get('strategy')!r}, not {self.name!r}")
        self.base.load_state_dict(state["base"])
        self.asks = int(state["asks"])
        self.inside = [int(x) for x in state["inside"]]
        self.outside = [int(x) for x in state["outside"]]
        self.pending = {str(k): bool(v) for k, v in state["pending"].items()}

    @property
    def share_outside(self) -> float:
        """Share of the scored evaluations that were proposed outside the region."""
        n = self.inside[0] + self.outside[0]
        return self.outside[0] / n if n else 0.0

    def _weighted(self, mask: MaskSpec) -> MaskSpec:
        """``mask`` with the sampling weights of its allowed ops (cell spaces; unchanged otherwise); kept
        while the mask and the weights stay the same (asked at every step)."""
        if self.weights is None or mask.inputs:
            return mask
        last = self._last_weighted
        if last is not None and last[0] is self.weights and last[1] == mask:
            return last[2]
        table = self.weights
        weights = tuple(
            tuple(float(table.get(layer.name, {}).get(op, 1.0)) for op in allowed)
            for layer, allowed in zip(self.space.layers, mask.ops, strict=True)
        )
        weighted = dataclasses.replace(mask, weights=weights)
        self._last_weighted = (self.weights, mask, weighted)
        return weighted

    # -- proposals outside -----------------------------------------------------------------------
    def _can_escape(self, mask: MaskSpec) -> bool:
        return len(self._fitness) >= self.warmup and mask != self._full

    def _parents(self) -> list[tuple[Genotype, float]]:
        population = getattr(self.base, "population", None)
        if population:
            return list(population)
        return list(self._recent)

    def _outside(self, mask: MaskSpec) -> Genotype | None:
        """A good parent with one choice switched to an excluded op; None when every such probe was seen.

        Parents are drawn by tournament, as the wrapped strategy would; when the draws keep giving seen
        children, every parent is tried, best first. Without an unseen probe the proposal stays inside.
        """
        rng = self.rng
        parents = self._parents()
        if not parents:
            return None
        k = min(len(parents), int(getattr(self.base, "tournament", 2)))
        for _ in range(PROBE_TRIES):
            contenders = rng.sample(range(len(parents)), k)
            parent = parents[max(contenders, key=lambda i: parents[i][1])][0]
            child = self._probe(parent, mask)
            if child is not None and self._fresh_outside(child, mask):
                return child
        for parent, _ in sorted(parents, key=lambda pf: -pf[1]):
            for child in self._probes(parent, mask):
                if self._fresh_outside(child, mask):
                    return child
        return None

    def _fresh_outside(self, g: Genotype, mask: MaskSpec) -> bool:
        space = self.space  # contains() on the full mask also checks a constrained space's validity
        return not space.contains(g, mask) and space.contains(g, self._full) and not self.base.is_seen(g)

    def _options(self, mask: MaskSpec) -> tuple[list[tuple[int, str]], list[float]]:
        """The (layer, excluded op) switches a probe may make, with their weights (zero-weight ones dropped)."""
        options: list[tuple[int, str]] = []
        weights: list[float] = []
        table = self.weights or {}
        for i, layer in enumerate(self.space.layers):
            for op in layer.ops:
                if op not in mask.ops[i]:
                    w = float(table.get(layer.name, {}).get(op, 1.0))
                    if w > 0:
                        options.append((i, op))
                        weights.append(w)
        return options, weights

    def _project(self, parent: Genotype, mask: MaskSpec) -> list[Any]:
        rng = self.rng
        return [
            op if op in allowed else allowed[rng.randrange(len(allowed))]
            for op, allowed in zip(parent, mask.ops, strict=True)
        ]

    def _probes(self, parent: Genotype, mask: MaskSpec) -> list[Genotype]:
        """Every probe of ``parent`` (cell spaces), heaviest switch first; one random one elsewhere."""
        if not isinstance(self.space, CellSpace):
            one = self._probe(parent, mask)
            return [] if one is None else [one]
        options, weights = self._options(mask)
        base = self._project(parent, mask)
        out: list[Genotype] = []
        for (i, op), _ in sorted(zip(options, weights, strict=True), key=lambda ow: -ow[1]):
            child = list(base)
            child[i] = op
            out.append(tuple(child))
        return out

    def _probe(self, parent: Genotype, mask: MaskSpec) -> Genotype | None:
        """``parent`` projected into ``mask`` with one (weighted) excluded op switched in."""
        space = self.space
        rng = self.rng
        if not isinstance(space, CellSpace):  # DARTS: a mutation in the full space, kept if it left the region
            return space.mutate(parent, space.full_mask(), rng)
        options, weights = self._options(mask)
        if not options:
            return None
        switched = self._project(parent, mask)
        i, op = rng.choices(options, weights=weights)[0]
        switched[i] = op
        return tuple(switched)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ascending values, by linear interpolation (numpy's default)."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])
