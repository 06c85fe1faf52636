"""The oracle region: the best refined space of the allowed size, computed from the target's own table.

It is a ceiling, not a method: it reads the target task's validation column, which no real search may
see. It answers "how good could a refined space of this size be?", so the bench can show how far the
principles' regions are from the best one.

Definition (what :func:`best_region` computes):

* A *region* allows, on every layer, exactly ``min(max_ops, ops on that layer)`` ops: the largest
  region the refiner may return. Allowing fewer is not considered, because with "at most" the answer
  is degenerate: the single best cell is a region whose mean is the maximum.
* Only regions that contain the target's best-by-validation cell count (a region that excludes the
  optimum cannot reach the paper's first stopping point).
* Among those, the best region has the highest mean validation metric over its cells (NaN cells are
  ignored: architectures a table does not hold, combinations that are not architectures); ties go to
  the first in canonical order (per-layer op combinations in the space's op order, layers in genotype
  order). "Best" is by fitness, so a lower-is-better metric's best region has the lowest mean.

The search is exhaustive and vectorised with numpy: with the optimum's op fixed in every layer, NB201
(5 ops, 2 per layer) has 4^6 = 4,096 candidate regions and TransNAS-Bench-101 micro (4 ops, 3 per
layer) has 3^6 = 729. Spaces with more than :data:`REGION_LIMIT` candidate regions are refused.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lapt.errors import UserError

REGION_LIMIT = 2_000_000


def region_count(layer_ops: Sequence[Sequence[str]], max_ops: int) -> int:
    """Candidate regions :func:`best_region` compares: per layer, the op sets of the allowed size holding
    the best cell's op."""
    return math.prod(math.comb(len(ops) - 1, min(max_ops, len(ops)) - 1) for ops in layer_ops)


def check_region_count(layer_ops: Sequence[Sequence[str]], max_ops: int) -> None:
    """UserError when the oracle region would take more than :data:`REGION_LIMIT` candidates to find."""
    n = region_count(layer_ops, max_ops)
    if n > REGION_LIMIT:
        raise UserError(
            f"rea-oracle: the space has {n:,} candidate regions of {max_ops} op(s) per layer, above the "
            f"{REGION_LIMIT:,} an exhaustive search takes; leave it out with --methods or lower --max-ops"
        )


@dataclass(frozen=True)
class OracleRegion:
    """The best region and what it holds.

    Attributes:
        ops: allowed ops per layer, in the space's canonical op order.
        size: number of op combinations in the region (valid or not; the space counts the valid ones).
        mean_val: mean fitness over the region's measured cells.
        best_index: table row of the target's best-by-validation cell (inside the region).
    """

    ops: tuple[tuple[str, ...], ...]
    size: int
    mean_val: float
    best_index: int


def best_region(values: np.ndarray, layer_ops: Sequence[Sequence[str]], max_ops: int) -> OracleRegion:
    """The region of the allowed size with the highest mean validation metric that holds the best cell.

    Args:
        values: the target's fitness column (:meth:`lapt.tables.base.BenchmarkTable.fitness`), indexed in
            mixed-radix order with the first layer most significant (:meth:`lapt.spaces.cell.CellSpace.index`).
        layer_ops: the candidate ops of each layer, in canonical order.
        max_ops: ops allowed per layer (clipped to the number of ops on each layer).

    Raises:
        ValueError: ``max_ops`` < 1, the column does not match the layers, or every value is NaN.
    """
    if max_ops < 1:
        raise ValueError(f"max_ops must be >= 1, got {max_ops}")
    radices = tuple(len(ops) for ops in layer_ops)
    flat = np.asarray(values, dtype=float)
    if flat.shape != (math.prod(radices),):
        raise ValueError(f"values has shape {flat.shape}, expected ({math.prod(radices)},) for layers {radices}")
    if np.isnan(flat).all():
        raise ValueError("every value is NaN: there is no best cell")
    best_index = int(np.nanargmax(flat))
    best_ops = np.unravel_index(best_index, radices)
    grid = flat.reshape(radices)
    per_layer: list[list[tuple[int, ...]]] = []
    for radix, b in zip(radices, best_ops, strict=True):
        k = min(max_ops, radix)
        per_layer.append([c for c in itertools.combinations(range(radix), k) if b in c])
    # Every region's sum (and count of non-NaN cells) at once: contract each layer's axis with the
    # 0/1 indicator rows of its candidate combinations. Axis i of the result indexes per_layer[i].
    sums = np.nan_to_num(grid, nan=0.0)
    counts = (~np.isnan(grid)).astype(float)
    for radix, combos in zip(radices, per_layer, strict=True):
        indicator = np.zeros((len(combos), radix))
        for row, combo in enumerate(combos):
            indicator[row, list(combo)] = 1.0
        sums = np.tensordot(sums, indicator, axes=([0], [1]))
        counts = np.tensordot(counts, indicator, axes=([0], [1]))
    means = sums / counts  # counts > 0: every region holds the (non-NaN) best cell
    flat_best = int(np.argmax(means))  # first maximum in C order = canonical order
    best_choice = [per_layer[i][j] for i, j in enumerate(np.unravel_index(flat_best, means.shape))]
    best_mean = float(means.flat[flat_best])
    ops = tuple(tuple(layer_ops[i][k] for k in c) for i, c in enumerate(best_choice))
    return OracleRegion(ops=ops, size=math.prod(len(c) for c in best_choice), mean_val=best_mean, best_index=best_index)
