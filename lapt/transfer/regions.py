"""Regions (refined spaces) chosen from target evidence, and the next region not tried yet.

A region is a :class:`~lapt.spaces.MaskSpec`; two regions are the same when they allow the same ops (and
inputs). :func:`evidence_region` is what the target evidence (:mod:`lapt.transfer.target_evidence`) says the region
should be; :func:`untried_region` changes a region as little as possible until it differs from every region
tried before, which is what a stalled search must do: repeating a region that already stopped paying (or
cycling between two) spends the budget on architectures the run has seen the like of.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from lapt.spaces import MaskSpec, SearchSpace
from lapt.transfer.target_evidence import ranked_ops

KEEP_RATIO = 0.75  # an op stays in the evidence region while its hit rate is >= 3/4 of the chance rate
PROTECT_TOP = 3  # the best architectures found so far whose ops a region keeps
PAIR_LIMIT = 4_000  # two-change candidates examined when no single change gives an untried region


def evidence_region(
    space: SearchSpace,
    evidence: Mapping[str, Any] | None,
    max_ops: int,
    keep_ratio: float | None = None,
    protect: Sequence[Mapping[str, Any]] = (),
) -> list[list[str]] | None:
    """Per layer, the ops the calibrated hit rates support: best first, at most ``max_ops``, at least one.

    An op is kept when its hit rate is at least ``keep_ratio`` times the base (chance) rate; the best op of
    a layer is always kept. The ops of the architectures in ``protect`` (``{layer: op}``, best first: the best
    found on the target so far) are kept too, while the layer has room or holds an op no protected
    architecture uses: a region never cuts the search off from its own best results, whose neighbourhoods
    are where evolution continues. None when the evidence has no hit rates (no source table, or too large a
    space).
    """
    if not evidence:
        return None
    base = float(evidence.get("base_rate", 0.05))
    ratio = KEEP_RATIO if keep_ratio is None else keep_ratio
    out: list[list[str]] = []
    for layer in space.layers:
        ranked = ranked_ops(dict(evidence), layer.name)
        if ranked is None:
            return None
        keep = [op for op, rate in ranked[:max_ops] if rate >= ratio * base] or [ranked[0][0]]
        needed: list[str] = []
        for arch in protect:
            op = arch.get(layer.name)
            if not isinstance(op, str) or op in needed or op not in layer.ops:
                continue
            if op not in keep:
                spare = [o for o in reversed(keep) if o not in needed]
                if len(keep) >= max_ops:
                    if not spare:
                        continue
                    keep.remove(spare[0])  # the weakest op no protected architecture needs
                keep.append(op)
            needed.append(op)
        order = [op for op, _ in ranked]
        out.append(sorted(keep, key=order.index))
    return out


def layer_scores(space: SearchSpace, evidence: Mapping[str, Any] | None) -> list[dict[str, float]]:
    """Per layer, a score per op for :func:`untried_region`: the calibrated hit rate, or 1 without evidence."""
    out = []
    for layer in space.layers:
        ranked = ranked_ops(dict(evidence), layer.name) if evidence else None
        out.append(dict(ranked) if ranked else dict.fromkeys(layer.ops, 1.0))
    return out


def untried_region(
    space: SearchSpace,
    region: MaskSpec,
    tried: Collection[MaskSpec],
    scores: Sequence[Mapping[str, float]],
    max_ops: int,
) -> MaskSpec | None:
    """The region closest to ``region`` that is in neither ``tried`` nor equal to ``region`` if tried.

    Returns ``region`` itself when it is untried. Otherwise single changes are tried first, most promising
    first: on a layer with room, *add* an excluded op; on a full layer, *swap* its weakest op for an
    excluded one; candidates are ordered by the excluded op's score over the weakest allowed op's score
    (ties in layer order, then op order). Then pairs of such changes; then the full space. None when every
    one of those was tried. Inputs (DARTS) are kept as they are.
    """
    tried_set = set(tried)
    if region not in tried_set:
        return region
    changes = _single_changes(space, region, scores, max_ops)
    for _, li, ops in changes:
        candidate = _with_layer(region, li, ops)
        if candidate not in tried_set:
            return candidate
    for (_, la, ops_a), (_, lb, ops_b) in itertools.islice(itertools.combinations(changes, 2), PAIR_LIMIT):
        if la == lb:
            continue
        candidate = _with_layer(_with_layer(region, la, ops_a), lb, ops_b)
        if candidate not in tried_set:
            return candidate
    full = space.full_mask()
    return full if full not in tried_set else None


def _single_changes(
    space: SearchSpace, region: MaskSpec, scores: Sequence[Mapping[str, float]], max_ops: int
) -> list[tuple[float, int, tuple[str, ...]]]:
    out: list[tuple[float, int, int, int, tuple[str, ...]]] = []
    for li, layer in enumerate(space.layers):
        allowed = region.ops[li]
        score = scores[li]
        weakest = min(allowed, key=lambda op: (score.get(op, 0.0), -layer.ops.index(op)))
        floor = max(score.get(weakest, 0.0), 1e-12)
        for k, op in enumerate(layer.ops):
            if op in allowed:
                continue
            keep = set(allowed) if len(allowed) < max_ops else set(allowed) - {weakest}
            ops = tuple(o for o in layer.ops if o in keep or o == op)
            out.append((score.get(op, 0.0) / floor, li, k, len(out), ops))
    out.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(ratio, li, ops) for ratio, li, _, _, ops in out]


def _with_layer(region: MaskSpec, li: int, ops: tuple[str, ...]) -> MaskSpec:
    new_ops = list(region.ops)
    new_ops[li] = ops
    return MaskSpec(ops=tuple(new_ops), inputs=region.inputs)
