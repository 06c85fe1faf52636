"""What the source data says about a claim: how often an op is among the best, against its share of all.

An agent's answer is a claim about data it was shown. A principle favouring ``avg_pool_3x3`` on
``edge_0_3`` claims the op helps there; the source table can say it is on that edge in 0 of the 50 best
cells while 20 % of all cells have it. :class:`SourceSupport` holds, per layer and op, the count among the
top-k architectures the learner saw and the share among all measured ones, so every such claim is scored
with the same figures, in the same words, in ``decisions.jsonl``, the trace and the repair message.

The score is a binomial z: ``(top - k * share) / sqrt(k * share * (1 - share))`` for an op found ``top``
times among ``k`` top slots. A favoured op at ``z <= -Z_CONTRADICTS`` (far rarer among the best than
among all) is contradicted, and so is an avoided op at ``z >= Z_CONTRADICTS``. Two standard deviations:
at k = 50 an op on 20 % of all cells is contradicted as favoured when it is on 4 or fewer of the best
(10 expected).

A region is scored the same way (:func:`region_coverage`): the share of the source's top-k inside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lapt.spaces import Genotype, MaskSpec, SearchSpace
from lapt.transfer.evidence import op_codes

Z_CONTRADICTS = 2.0
MIN_COVERAGE = 0.05
"""The least share of the source's top-k a first region must keep. A region without one in twenty of the
best source architectures throws the transfer away; one that keeps 3 of the 50 best in 64 of NAS-Bench-201's
15,625 cells is still 15 times denser in them than the full space. The offline refiner's first regions keep
26-52 % on the shipped benchmarks (``tests/test_grounding.py``)."""


@dataclass(frozen=True)
class OpSupport:
    """One op on one layer (or on every layer, for a principle about the whole architecture)."""

    op: str
    where: str
    top: int
    slots: int
    share: float

    @property
    def z(self) -> float:
        """The binomial z of ``top`` among ``slots`` against ``share`` (0 where the share is 0 or 1)."""
        var = self.slots * self.share * (1.0 - self.share)
        return (self.top - self.slots * self.share) / math.sqrt(var) if var > 0 else 0.0

    def text(self) -> str:
        """``avg_pool_3x3 on edge_0_3: 0 of the 50 best, 20 % of all`` (what decisions and repairs quote)."""
        return f"{self.op} on {self.where}: {self.top} of the {self.slots} best, {100 * self.share:.0f} % of all"


@dataclass(frozen=True)
class SourceSupport:
    """Per layer and op: the count among the top-k source architectures and the share among all of them.

    Several sources are pooled (their top-k counts and their counts among all added).
    """

    space: SearchSpace
    top_k: int
    top: Mapping[str, Mapping[str, int]]
    share: Mapping[str, Mapping[str, float]]
    best: tuple[Genotype, ...]

    @classmethod
    def of(
        cls, space: SearchSpace, sources: Sequence[tuple[Sequence[Genotype], np.ndarray]], top_k: int
    ) -> SourceSupport:
        """The support figures of ``sources`` (each its architectures and values, higher is better)."""
        top: dict[str, dict[str, int]] = {la.name: dict.fromkeys(la.ops, 0) for la in space.layers}
        total: dict[str, dict[str, int]] = {la.name: dict.fromkeys(la.ops, 0) for la in space.layers}
        best: list[Genotype] = []
        n_all = 0
        k_used = 0
        for archs, values in sources:
            vals = np.asarray(values, dtype=float)
            measured = ~np.isnan(vals)
            if not measured.any():
                continue
            codes = op_codes(space, archs)
            order = top_indices(vals, top_k)
            best.extend(archs[int(i)] for i in order)
            n_all += int(measured.sum())
            k_used += len(order)
            for li, layer in enumerate(space.layers):
                counts = np.bincount(codes[measured, li], minlength=len(layer.ops))
                top_counts = np.bincount(codes[order, li], minlength=len(layer.ops))
                for k, op in enumerate(layer.ops):
                    total[layer.name][op] += int(counts[k])
                    top[layer.name][op] += int(top_counts[k])
        share = {la: {op: c / max(1, n_all) for op, c in ops.items()} for la, ops in total.items()}
        return cls(space, k_used, top, share, tuple(best))

    def op(self, op: str, layer: str | None) -> OpSupport | None:
        """The support of ``op`` on ``layer`` (None: pooled over every layer that has it); None if no layer has it."""
        names = [layer] if layer is not None else [la.name for la in self.space.layers if op in self.top[la.name]]
        names = [n for n in names if op in self.top.get(n, {})]
        if not names:
            return None
        top = sum(self.top[n][op] for n in names)
        share = sum(self.share[n][op] for n in names) / len(names)
        return OpSupport(op, layer or "every layer", top, self.top_k * len(names), share)

    def contradicts(self, op: str, layer: str | None, favoured: bool) -> OpSupport | None:
        """The figures when the data contradicts favouring (or avoiding) ``op`` on ``layer``, else None."""
        s = self.op(op, layer)
        if s is None:
            return None
        return s if (s.z <= -Z_CONTRADICTS if favoured else s.z >= Z_CONTRADICTS) else None


def top_indices(values: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the ``top_k`` highest ``values`` (NaN left out), best first, ties in index order."""
    vals = np.asarray(values, dtype=float)
    idx = np.flatnonzero(~np.isnan(vals))
    return idx[np.argsort(-vals[idx], kind="stable")[:top_k]]


def source_best(sources: Sequence[tuple[Sequence[Genotype], np.ndarray]], top_k: int) -> list[Genotype]:
    """The ``top_k`` best architectures of each source (what the learner was shown), pooled."""
    return [archs[int(i)] for archs, values in sources for i in top_indices(values, top_k)]


def region_coverage(space: SearchSpace, spec: MaskSpec, best: Sequence[Genotype]) -> float:
    """The share of ``best`` inside the region ``spec`` (1.0 when there is nothing to cover)."""
    if not best:
        return 1.0
    inside = sum(space.contains(g, spec) for g in best)
    return inside / len(best)
