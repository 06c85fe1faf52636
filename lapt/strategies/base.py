"""Ask/tell search strategies with a small JSON-serialisable state.

Every strategy proposes architectures inside the mask it is given (the mask may change between asks,
after an adaptation), never proposes an architecture it has proposed before, and never hangs: when the
region has fewer unseen architectures than asked for it returns what is left and sets ``exhausted``.

State is split by cost. :meth:`Strategy.state_dict` is what a checkpoint holds after every step, so it
stays the same size however long the run: the number of asks so far (each ask draws from an RNG seeded
with ``(seed, ask number)``, so no generator state is saved) and the strategy's own working set (REA's
population). The architectures already seen grow with the run and are not in it: a resumed run already
has them in its trial record, and hands them back with :meth:`Strategy.mark_seen`.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from lapt.spaces import Genotype, MaskSpec, SearchSpace

# Rejection sampling is cheap while the region is mostly unseen; past this many misses in a row the
# strategy switches to enumerating what is left (only possible in regions up to ENUMERATE_LIMIT).
REJECTION_TRIES = 64
ENUMERATE_LIMIT = 200_000


class Strategy(abc.ABC):
    """Base class: owns the RNG, the record of proposed architectures, and the exhaustion logic."""

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space = space
        self.seed = seed
        self.asks = 0
        self.rng = random.Random()
        self._seen: set[Hashable] = set()
        self.exhausted = False

    # -- public API ------------------------------------------------------------------------------
    def ask(self, mask: MaskSpec, n: int = 1) -> list[Genotype]:
        """Propose up to ``n`` unseen architectures inside ``mask`` (fewer only when it is exhausted)."""
        # A string seed is hashed (SHA-512) into the generator: every (seed, ask) pair gets its own
        # stream, the same in every process, and the state to save is one integer.
        self.rng.seed(f"{self.seed}/{self.asks}")
        self.asks += 1
        out: list[Genotype] = []
        self.exhausted = False
        for _ in range(n):
            g = self._propose(mask)
            if g is None:
                self.exhausted = True
                break
            self._seen.add(self.space.key(g))
            out.append(g)
        return out

    def tell(self, results: Sequence[tuple[Genotype, float | None]]) -> None:
        """Report fitness (validation metric, higher is better; None for a failed evaluation)."""
        for g, fitness in results:
            self._seen.add(self.space.key(g))
            self._observe(g, fitness)

    def mark_seen(self, genotypes: Sequence[Genotype]) -> None:
        """Record architectures evaluated elsewhere so they are never proposed again."""
        for g in genotypes:
            self._seen.add(self.space.key(g))

    @property
    def seen_count(self) -> int:
        """How many distinct architectures were proposed or reported."""
        return len(self._seen)

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state of constant size: with :meth:`mark_seen` of every architecture proposed so
        far, enough to continue exactly where this strategy stopped."""
        return {"strategy": self.name, "seed": self.seed, "asks": self.asks, "extra": self._extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the seen architectures come from :meth:`mark_seen`)."""
        if state.get("strategy") != self.name:
            raise ValueError(f"state is for strategy {state.get('strategy')!r}, not {self.name!r}")
        self.seed = int(state["seed"])
        self.asks = int(state["asks"])
        self._load_extra(state.get("extra", {}))

    # -- hooks -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def _propose(self, mask: MaskSpec) -> Genotype | None:
        """One unseen architecture inside ``mask``, or None if none is left."""

    def _observe(self, genotype: Genotype, fitness: float | None) -> None:
        """Update internal state with one result (random search keeps none)."""
        return None

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, extra: dict[str, Any]) -> None:
        return None

    # -- helpers ---------------------------------------------------------------------------------
    def is_seen(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` was proposed or reported before."""
        return self.space.key(genotype) in self._seen

    def sample_unseen(self, mask: MaskSpec) -> Genotype | None:
        """A uniform draw among the unseen architectures of ``mask``; None when there are none."""
        space = self.space
        for _ in range(REJECTION_TRIES):
            g = space.sample(mask, self.rng)
            if space.key(g) not in self._seen:
                return g
        size = space.size(mask)
        if size > ENUMERATE_LIMIT:
            # A huge region that keeps returning seen architectures is vanishingly unlikely; keep trying
            # a bounded number of times rather than enumerating it.
            for _ in range(100 * REJECTION_TRIES):
                g = space.sample(mask, self.rng)
                if space.key(g) not in self._seen:
                    return g
            return None
        left = [g for g in space.enumerate(mask, limit=ENUMERATE_LIMIT) if space.key(g) not in self._seen]
        return left[self.rng.randrange(len(left))] if left else None
