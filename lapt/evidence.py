"""Per-layer op statistics over evaluated architectures: the numbers principles are built on.

Both reasoners see the same figures: the LLM as a table in its prompt, the offline miner as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lapt.spaces import Genotype, SearchSpace

HIT_QUANTILE = 0.05  # "hit" = among the best 5 % of the architectures considered


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
    order = idx[np.argsort(-vals, kind="stable")]
    top = set(order[: min(top_k, len(order))].tolist())
    threshold = np.quantile(vals, 1.0 - HIT_QUANTILE) if len(vals) else np.inf
    stats: dict[str, dict[str, dict[str, float]]] = {}
    for li, layer in enumerate(space.layers):
        per_op: dict[str, dict[str, float]] = {}
        choice = [archs[int(i)][li] for i in idx]
        for op in layer.ops:
            sel = np.fromiter((c == op for c in choice), dtype=bool, count=len(choice))
            n = int(sel.sum())
            top_count = sum(1 for i in top if archs[i][li] == op)
            per_op[op] = {
                "top_count": float(top_count),
                "top_share": top_count / max(1, len(top)),
                "hit_rate": float((vals[sel] >= threshold).mean()) if n else 0.0,
                "mean": float(vals[sel].mean()) if n else float("nan"),
            }
        stats[layer.name] = per_op
    return stats


def format_statistics(stats: dict[str, dict[str, dict[str, float]]]) -> str:
    """A compact text table of :func:`layer_statistics` for prompts."""
    lines = []
    for layer, per_op in stats.items():
        cells = ", ".join(
            f"{op}: top {int(s['top_count'])}, hit {100 * s['hit_rate']:.1f}%" for op, s in per_op.items()
        )
        lines.append(f"- {layer}: {cells}")
    return "\n".join(lines)


def format_architectures(space: SearchSpace, rows: Sequence[tuple[Genotype, float]], label: str = "") -> str:
    """One line per architecture, ``[op, op, ...] -> metric``, for prompts."""
    prefix = f"[{label}] " if label else ""
    out = []
    for g, v in rows:
        choices: list[Any] = list(space.describe_genotype(g).values())
        out.append(f"{prefix}{choices} -> {v:.4f}")
    return "\n".join(out)
