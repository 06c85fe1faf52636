"""Random search: uniform draws from the unseen part of the current region."""

from __future__ import annotations

from lapt.spaces import Genotype, MaskSpec
from lapt.strategies.base import Strategy


class RandomSearch(Strategy):
    """The simplest baseline; every NAS method should beat it."""

    name = "random"

    def _propose(self, mask: MaskSpec) -> Genotype | None:
        return self.sample_unseen(mask)
