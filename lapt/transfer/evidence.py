"""Per-layer op statistics over evaluated architectures: the numbers principles are built on.

Both reasoners see the same figures: the LLM as a table in its prompt, the offline miner as data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lapt.spaces import Genotype, SearchSpace

HIT_QUANTILE = 0.05  # "hit" = among the best 5 % of the architectures considered


def magnitude(values: np.ndarray) -> float:
    """The power of two at the scale of the largest absolute finite value (1.0 when there is none, or it is
    0): what sums and squares of metric values are taken at, so that a table of values near the largest
    float (1.7e308) sums without overflow. A power of two, because dividing by one is exact: means and
    z-scores come out bit for bit as they would unscaled, wherever that does not overflow."""
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    top = float(np.max(np.abs(finite))) if finite.size else 0.0
    return math.ldexp(1.0, math.frexp(top)[1] - 1) if top > 0 else 1.0


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (ddof 0) of finite ``values``, computed at their :func:`magnitude`."""
    v = np.asarray(values, dtype=float)
    scale = magnitude(v)
    u = v / scale
    return float(u.mean()) * scale, float(u.std()) * scale


def layer_statistics(
    space: SearchSpace, archs: Sequence[Genotype], values: np.ndarray, top_k: int
) -> dict[str, dict[str, dict[str, float]]]:
    """For every layer and op: count among the top ``top_k``, hit rate, and mean metric.

    Args:
        space: the search space (cell-style: one op per layer).
        archs: the architectures, aligned with ``values``.
        values: their validation metric, higher is better; NaN entries are ignored.
        top_k: how many of the best count as "top".

    Returns:
        ``{layer: {op: {"top_count", "top_share", "hit_rate", "mean"}}}``; ``hit_rate`` is the share of
        architectures using the op that are in the best :data:`HIT_QUANTILE` (base rate 0.05).
    """
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    idx = np.flatnonzero(keep)
    vals = values[idx]
    codes = op_codes(space, archs)[idx]
    order = np.argsort(-vals, kind="stable")[: min(top_k, len(vals))]
    rates = hit_rates(codes, vals, [len(layer.ops) for layer in space.layers])
    stats: dict[str, dict[str, dict[str, float]]] = {}
    for li, layer in enumerate(space.layers):
        col = codes[:, li]
        top_col = col[order]
        per_op: dict[str, dict[str, float]] = {}
        for k, op in enumerate(layer.ops):
            sel = col == k
            n = int(sel.sum())
            top_count = int((top_col == k).sum())
            per_op[op] = {
                "top_count": float(top_count),
                "top_share": top_count / max(1, len(order)),
                "hit_rate": float(rates[li][k]),
                "mean": mean_std(vals[sel])[0] if n else float("nan"),
            }
        stats[layer.name] = per_op
    return stats


def hit_rates(codes: np.ndarray, values: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Per layer, per op: the share of the architectures using it whose value is in the best
    :data:`HIT_QUANTILE` (0 for an op no architecture uses).

    Args:
        codes: op indices, ``(n_archs, n_layers)`` (:func:`op_codes`).
        values: one finite value per architecture, higher is better.
        sizes: the number of ops of each layer.
    """
    threshold = np.quantile(values, 1.0 - HIT_QUANTILE) if len(values) else np.inf
    hit = values >= threshold
    out = []
    for li, size in enumerate(sizes):
        col = codes[:, li]
        total = np.bincount(col, minlength=size)
        hits = np.bincount(col[hit], minlength=size)
        out.append(np.divide(hits, total, out=np.zeros(size), where=total > 0))
    return out


_CODES: dict[int, tuple[Sequence[Genotype], np.ndarray]] = {}


def op_codes(space: SearchSpace, archs: Sequence[Genotype]) -> np.ndarray:
    """Op indices (per layer, in the layer's op order) as an (n_archs, n_layers) array, one op per layer;
    memoised per archs object (the full enumeration is reused)."""
    hit = _CODES.get(id(archs))
    if hit is not None and hit[0] is archs:
        return hit[1]
    index = [{op: k for k, op in enumerate(layer.ops)} for layer in space.layers]
    codes = np.array([[index[li][g[li]] for li in range(len(index))] for g in archs], dtype=np.int16)
    _CODES.clear()
    _CODES[id(archs)] = (archs, codes)
    return codes
