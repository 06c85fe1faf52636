"""Ask/tell search strategies with JSON-serialisable state.

Every strategy proposes architectures inside the mask it is given (the mask may change between asks,
after an adaptation), never proposes an architecture it has proposed before, and never hangs: when the
region has fewer unseen architectures than asked for it returns what is left and sets ``exhausted``.
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


def _state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


class Strategy(abc.ABC):
    """Base class: owns the RNG, the record of proposed architectures, and the exhaustion logic."""

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self._seen: set[Hashable] = set()
        self.history: list[tuple[Genotype, float | None]] = []
        self.exhausted = False

    # -- public API ------------------------------------------------------------------------------
    def ask(self, mask: MaskSpec, n: int = 1) -> list[Genotype]:
        """Propose up to ``n`` unseen architectures inside ``mask`` (fewer only when it is exhausted)."""
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
            self.history.append((g, fitness))
            self._observe(g, fitness)

    def mark_seen(self, genotypes: Sequence[Genotype]) -> None:
        """Record architectures evaluated elsewhere so they are never proposed again."""
        for g in genotypes:
            self._seen.add(self.space.key(g))

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state: enough to continue exactly where this strategy stopped."""
        to_str = self.space.to_str
        return {
            "strategy": self.name,
            "seed": self.seed,
            "rng": _state_to_json(self.rng.getstate()),
            "seen": sorted(to_str(self._genotype_of(k)) for k in self._seen),
            "history": [[to_str(g), f] for g, f in self.history],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state.get("strategy") != self.name:
            raise ValueError(f"state is for strategy {state.get('strategy')!r}, not {self.name!r}")
        from_str = self.space.parse
        self.seed = state["seed"]
        self.rng.setstate(_state_from_json(state["rng"]))
        self._seen = {self.space.key(from_str(a)) for a in state["seen"]}
        self.history = [(from_str(a), f) for a, f in state["history"]]
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
    def _genotype_of(self, key: Hashable) -> Genotype:
        # Every built-in space uses the genotype itself as its key.
        return key  # type: ignore[return-value]

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
