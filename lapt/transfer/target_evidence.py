"""Target evidence: how each op does on the target so far, against what the source task(s) predicted.

Principles are learned on source tasks; the target may disagree. This module turns the evaluations made
on the target so far into numbers an adapter (the offline miner or an LLM) can reason with, and that the
search uses to weigh ops inside and outside the refined region.

The model, in three steps:

1. **Source prediction.** Each source task's validation column is standardised (z-scores over every
   architecture). With several sources, each is weighted by how well it *ranks the target architectures
   evaluated so far*: its Spearman correlation with the target fitness on those architectures, clipped
   at 0 (a source that ranks them backwards gets no say). Before :data:`MIN_RANKED` evaluations the
   weights are equal. The weighted mean is the prediction ``p`` for every architecture.
2. **Calibration on the target.** The target fitness (standardised over the evaluated architectures) is
   fitted as ``alpha + beta * p + sum over layers of delta[layer, op]``: ``beta`` says how far the source
   prediction carries over. It starts from a prior (:data:`PRIOR_CORR`, worth :data:`PRIOR_EVALS`
   evaluations): the first target architectures are drawn inside a region of the source's best, where a
   handful of them rank the source's prediction almost at random, and a source must not be dropped on that
   alone. When the data pull it to <= 0 anyway, the source ranks the target backwards and the fit is
   redone without it. ``delta`` is what each op
   does on the target *beyond* the prediction, with a ridge penalty (:data:`RIDGE`) that keeps it at 0
   until the target shows otherwise. Ops outside the region get a ``delta`` only from architectures that
   stepped outside it (see :mod:`lapt.strategies.escape`).
3. **Calibrated hit rates.** ``beta * p + delta`` scores every architecture of the space; as for the
   source principles (:func:`lapt.transfer.evidence.layer_statistics`), an op's *hit rate* is the share of the
   architectures using it that land in the best :data:`~lapt.transfer.evidence.HIT_QUANTILE` (5 %) by that score.

Format (JSON, what :func:`target_evidence` returns; the adapter receives it as ``evidence``)::

    {
      "evaluations": 20,                 # successful target evaluations used
      "base_rate": 0.05,                 # a hit rate equal to this is "no better than chance"
      "source_slope": 0.83,              # beta (null without sources or before 2 evaluations)
      "sources": [                       # one per source task, in the run's order
        {"task": "jigsaw", "rank_corr": 0.41, "weight": 1.0}      # rank_corr null before MIN_RANKED
      ],
      "layers": {
        "edge_0_1": {
          "nor_conv_3x3": {
            "predicted_hit_rate": 0.101, # from the (weighted) sources alone; null without sources
            "hit_rate": 0.118,           # calibrated on the target (step 3); null when nothing to go on
            "n": 7,                      # evaluated target architectures using this op here
            "target_mean": 0.45,         # their mean standardised target fitness (null when n = 0)
            "predicted_mean": 0.30,      # the calibrated source prediction for the same architectures
            "delta": 0.12                # delta[layer, op]: beyond-prediction effect on the target
          }, ...
        }, ...
      }
    }

Spaces too large to enumerate (DARTS) or runs without source tables get the descriptive fields only
(``hit_rate`` from the target fit alone when the space can be enumerated, else null); consumers treat a
null hit rate as "no evidence" and fall back to the principles.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from lapt.spaces import Genotype, SearchSpace
from lapt.transfer.evidence import HIT_QUANTILE, hit_rates, magnitude, op_codes

MIN_RANKED = 5  # evaluations before a source's rank correlation on the target is trusted
RIDGE = 5.0  # penalty on the per-op deviations: about 5 evaluations of evidence to move one by half
PRIOR_CORR = 0.5  # the prior slope, as a correlation: a source predicts the target moderately well
PRIOR_EVALS = 10.0  # the prior slope weighs as much as this many evaluations
ENUMERATE_LIMIT = 200_000  # calibrated hit rates need every architecture of the space
WEIGHT_FLOOR = 0.005  # a sampling weight never reaches 0: an op judged bad stays reachable
WEIGHT_POWER = 2.0  # sampling weights are hit rates squared: the strong ops dominate, the weak stay reachable


class SourceColumn(Protocol):
    """One source task's table column over the enumerated space (``lapt.agents.learner.SourceData``)."""

    task: str
    archs: Sequence[Genotype]
    values: np.ndarray


class TargetRecord:
    """The successful target results so far, as the arrays the evidence reads, grown one trial at a time.

    A run adapts every few evaluations; rebuilding these arrays from every trial each time would make a
    long run's adaptations cost more and more. A record is added to as trials arrive and read at each
    adaptation, so the Python work per trial is done once.

    Args:
        space: the search space.
        archs: the source architectures (rows of the source columns), or None when there are none.
    """

    def __init__(self, space: SearchSpace, archs: Sequence[Genotype] | None):
        self.space = space
        self.archs = archs
        self.told = 0  # trials added, failed ones included
        self._index = [{op: k for k, op in enumerate(layer.ops)} for layer in space.layers]
        self.offsets = np.cumsum([0] + [len(layer.ops) for layer in space.layers])
        # Typed buffers: an adaptation reads them as numpy arrays with one copy, not per element.
        self._y = array("d")
        self._rows = array("q")
        self._hot_r = array("q")  # (result, column) of every 1 in the one-hot design matrix
        self._hot_c = array("q")
        self._use_r = array("q")  # the same, each op once per result (the per-op statistics)
        self._use_c = array("q")
        m = int(self.offsets[-1])
        self.pairs = np.zeros((m, m))  # onehot.T @ onehot, summed as results arrive

    def add(self, genotype: Genotype, fitness: float | None) -> None:
        """One more trial (in the run's order); failed ones count as told and are left out."""
        self.told += 1
        if fitness is None or not np.isfinite(fitness):
            return
        r = len(self._y)
        self._y.append(float(fitness))
        if self.archs is not None:
            self._rows.append(_row(self.space, self.archs, genotype))
        offsets = self.offsets
        cols = [int(offsets[li]) + index[op] for li, index in enumerate(self._index) for op in _ops_of(genotype[li])]
        self._hot_r.extend([r] * len(cols))
        self._hot_c.extend(cols)
        once = list(dict.fromkeys(cols))
        self._use_r.extend([r] * len(once))
        self._use_c.extend(once)
        for a in cols:
            row = self.pairs[a]
            for b in cols:
                row[b] += 1.0

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None, _Hot, _Hot]:
        """``(y, rows, hot, use)``: fitness, source row (None without sources), the ones of the one-hot
        design matrix as (result, column) pairs (an op used twice in a layer counts twice), and the
        same with each op once per result."""
        y = _copy(self._y, np.float64)
        rows = _copy(self._rows, np.int64) if self.archs is not None else None
        hot = _Hot(_copy(self._hot_r, np.int64), _copy(self._hot_c, np.int64), len(y), self.pairs)
        use = _Hot(_copy(self._use_r, np.int64), _copy(self._use_c, np.int64), len(y), self.pairs)
        return y, rows, hot, use


def _copy(buffer: array[Any], dtype: Any) -> np.ndarray:
    """A numpy copy of a typed buffer (a copy, so the buffer may grow again)."""
    return np.frombuffer(buffer, dtype=dtype).copy() if len(buffer) else np.zeros(0, dtype=dtype)


def target_evidence(
    space: SearchSpace,
    sources: Sequence[SourceColumn],
    trials: Sequence[tuple[Genotype, float | None]],
) -> dict[str, Any]:
    """The evidence of the module docstring, from the source columns and the target results so far.

    Args:
        space: the search space.
        sources: the source tasks' validation columns over ``space.enumerate()`` (may be empty).
        trials: target results, ``(genotype, fitness)`` with fitness higher-is-better, None when failed.
    """
    record = TargetRecord(space, source_archs(space, sources))
    for g, f in trials:
        record.add(g, f)
    return evidence_of(record, sources)


def evidence_of(record: TargetRecord, sources: Sequence[SourceColumn]) -> dict[str, Any]:
    """The evidence of the module docstring from a :class:`TargetRecord` (see :func:`target_evidence`)."""
    space = record.space
    archs = record.archs
    n_layers = len(space.layers)
    offsets = record.offsets
    y, rows, hot, use = record.arrays()
    m = int(offsets[-1])
    yz = _zscores(y)

    # Each evaluated architecture's row in the source columns; one the sources never measured (a user
    # table need not hold every cell) reads the extra last entry, an average prediction (z = 0).
    columns = [_column(s.values) for s in sources] if archs is not None else []
    corr: list[float | None] = []
    for col in columns:
        corr.append(_spearman(col[rows], y) if rows is not None and len(y) >= MIN_RANKED else None)
    weights = _source_weights(corr)
    p: np.ndarray | None = None
    p_all: np.ndarray | None = None  # over the source architectures, then the extra entry
    if columns:
        if len(columns) == 1:
            p_all = columns[0]
        else:
            p_all = np.sum([w * c for w, c in zip(weights, columns, strict=True)], axis=0) / sum(weights)
        p = p_all[:-1]

    # Calibration: yz ~ alpha + beta * p + onehot @ delta (ridge on delta, beta shrunk to its prior).
    fitted = len(y) >= 2 and bool(np.any(yz != 0))
    alpha, beta, delta = 0.0, 1.0, np.zeros(m)
    if fitted and p_all is not None and rows is not None:
        alpha, beta, delta = _fit(yz, hot, m, p_all[rows])
        if beta <= 0:  # the sources rank these architectures backwards: trust the target alone
            alpha, _, delta = _fit(yz, hot, m, None)
            beta = 0.0
    elif fitted:
        alpha, _, delta = _fit(yz, hot, m, None)

    hit: list[np.ndarray] | None = None
    prior: list[np.ndarray] | None = None
    if archs is not None:
        codes = op_codes(space, archs)
        sizes = [len(layer.ops) for layer in space.layers]
        if p_all is not None:
            prior = _priorhit_rates(codes, p_all, sizes)
        if fitted or p is not None:
            score = beta * p if p is not None else np.zeros(len(archs))
            for li in range(n_layers):
                score = score + delta[offsets[li] + codes[:, li]]
            hit = hit_rates(codes, score, sizes)

    predicted = alpha + beta * p_all[rows] if p_all is not None and rows is not None and fitted else None
    n_use = np.bincount(use.c, minlength=m)
    mean_y = np.bincount(use.c, weights=yz[use.r], minlength=m) / np.maximum(n_use, 1)
    mean_p = None
    if predicted is not None:
        mean_p = np.bincount(use.c, weights=predicted[use.r], minlength=m) / np.maximum(n_use, 1)
    layers: dict[str, dict[str, dict[str, Any]]] = {}
    for li, layer in enumerate(space.layers):
        per_op: dict[str, dict[str, Any]] = {}
        for k, op in enumerate(layer.ops):
            j = int(offsets[li]) + k
            n = int(n_use[j])
            per_op[op] = {
                "predicted_hit_rate": _r(float(prior[li][k])) if prior is not None else None,
                "hit_rate": _r(float(hit[li][k])) if hit is not None else None,
                "n": n,
                "target_mean": _r(float(mean_y[j])) if n else None,
                "predicted_mean": _r(float(mean_p[j])) if n and mean_p is not None else None,
                "delta": _r(float(delta[j])),
            }
        layers[layer.name] = per_op
    return {
        "evaluations": len(y),
        "base_rate": HIT_QUANTILE,
        "source_slope": _r(beta) if fitted and p is not None else None,
        "sources": [
            {"task": s.task, "rank_corr": None if c is None else _r(c), "weight": _r(w / sum(weights))}
            for s, c, w in zip(sources, corr, weights, strict=False)
        ]
        if columns
        else [{"task": s.task, "rank_corr": None, "weight": None} for s in sources],
        "layers": layers,
    }


def op_weights(evidence: dict[str, Any] | None) -> dict[str, dict[str, float]] | None:
    """Sampling weights per layer and op from the calibrated hit rates; None without a source prediction.

    The weight is ``max(hit rate, WEIGHT_FLOOR) ** WEIGHT_POWER``: an op twice as often among the best is
    drawn four times as often, and no op is ever impossible.
    """
    if not evidence:
        return None
    out: dict[str, dict[str, float]] = {}
    for layer, per_op in evidence.get("layers", {}).items():
        # Without a source prediction, a handful of target results is too little to tilt the sampling.
        if any(s.get("hit_rate") is None or s.get("predicted_hit_rate") is None for s in per_op.values()):
            return None
        out[layer] = {op: max(float(s["hit_rate"]), WEIGHT_FLOOR) ** WEIGHT_POWER for op, s in per_op.items()}
    return out or None


def ranked_ops(evidence: dict[str, Any], layer: str) -> list[tuple[str, float]] | None:
    """The ops of ``layer`` by calibrated hit rate, best first (stable on ties); None without hit rates."""
    per_op = evidence.get("layers", {}).get(layer)
    if not per_op or any(s.get("hit_rate") is None for s in per_op.values()):
        return None
    order = list(per_op)
    return sorted(((op, float(s["hit_rate"])) for op, s in per_op.items()), key=lambda x: (-x[1], order.index(x[0])))


# -- helpers ---------------------------------------------------------------------------------------
def _ops_of(choice: Any) -> list[str]:
    """The op names of one genotype entry: one op on a cell edge, two ``(op, input)`` edges on a DARTS node."""
    if isinstance(choice, str):
        return [choice]
    return [str(edge[0]) for edge in choice]


def source_archs(space: SearchSpace, sources: Sequence[SourceColumn]) -> Sequence[Genotype] | None:
    """The architectures hit rates are computed over: the sources' (one tuple per table), else the
    enumerated space when it is small enough, else None."""
    if sources:
        return sources[0].archs
    try:
        if space.size() > ENUMERATE_LIMIT or space.has_inputs:
            return None
    except ValueError:
        return None
    return _enumeration(space)


@functools.lru_cache(maxsize=8)
def _enumeration(space: SearchSpace) -> tuple[Genotype, ...]:
    return tuple(space.enumerate(limit=ENUMERATE_LIMIT))


_ROW_INDEX: dict[int, tuple[Sequence[Genotype], dict[Hashable, int]]] = {}


def _row(space: SearchSpace, archs: Sequence[Genotype], g: Genotype) -> int:
    """``g``'s position in ``archs``; ``len(archs)`` when it is not there.

    The source tables hand out one architecture tuple per table, so its index is built once and kept by
    object (with the object, so an id is never reused for another sequence).
    """
    hit = _ROW_INDEX.get(id(archs))
    if hit is None or hit[0] is not archs:
        if len(_ROW_INDEX) >= 8:
            _ROW_INDEX.clear()
        hit = (archs, {a: i for i, a in enumerate(archs)})
        _ROW_INDEX[id(archs)] = hit
    return hit[1].get(g, len(archs))


_COLUMNS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _column(values: np.ndarray) -> np.ndarray:
    """A source column standardised, with the extra last entry (z = 0); kept by the values object."""
    hit = _COLUMNS.get(id(values))
    if hit is None or hit[0] is not values:
        if len(_COLUMNS) >= 16:
            _COLUMNS.clear()
        hit = (values, np.append(_standardised(values), 0.0))
        _COLUMNS[id(values)] = hit
    return hit[1]


_PRIOR: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}


def _priorhit_rates(codes: np.ndarray, p_all: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """:func:`_hit_rates` of the source prediction (``p_all`` without its extra last entry), kept by the
    prediction object: with one source it is the same column at every adaptation."""
    hit = _PRIOR.get(id(p_all))
    if hit is None or hit[0] is not p_all:
        if len(_PRIOR) >= 16:
            _PRIOR.clear()
        hit = (p_all, hit_rates(codes, p_all[:-1], sizes))
        _PRIOR[id(p_all)] = hit
    return hit[1]


def _zscores(y: np.ndarray) -> np.ndarray:
    """``(y - mean) / std`` of the target results (zeros for fewer than two, or all equal), taken at the
    values' magnitude so that metrics near the largest float neither overflow nor warn."""
    if len(y) < 2:
        return np.zeros(len(y))
    u = np.asarray(y, dtype=float) / magnitude(y)
    std = float(u.std())
    return (u - u.mean()) / std if std > 0 else np.zeros(len(y))


def _standardised(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    v = v / magnitude(v)  # z-scores do not depend on the scale; sums near 1.7e308 would overflow
    mean, std = float(v[finite].mean()), float(v[finite].std())
    z = (v - mean) / (std if std > 0 else 1.0)
    z[~finite] = float(z[finite].min()) if finite.any() else 0.0  # unmeasured cells rank last
    return z


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), as Spearman's correlation needs."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float))
    sa, sb = ra.std(), rb.std()
    if sa == 0 or sb == 0:
        return 0.0
    return float(((ra - ra.mean()) * (rb - rb.mean())).mean() / (sa * sb))


def _source_weights(corr: Sequence[float | None]) -> list[float]:
    if not corr:
        return []
    if any(c is None for c in corr):
        return [1.0] * len(corr)
    w = [max(0.0, float(c)) for c in corr if c is not None]
    return w if sum(w) > 0 else [1.0] * len(corr)


class _Hot(NamedTuple):
    """The ones of the one-hot design matrix: result ``r[i]`` uses op column ``c[i]``; ``n`` results;
    ``pairs`` is the matrix's ``onehot.T @ onehot``."""

    r: np.ndarray
    c: np.ndarray
    n: int
    pairs: np.ndarray


def _fit(yz: np.ndarray, hot: _Hot, m: int, p: np.ndarray | None) -> tuple[float, float, np.ndarray]:
    """Ridge fit of ``yz ~ alpha + beta * p + onehot @ delta``: alpha free, delta shrunk to 0, beta shrunk to
    the prior slope (``PRIOR_CORR`` standard deviations of ``yz`` per standard deviation of ``p`` over the
    evaluated architectures, weighing as much as ``PRIOR_EVALS`` of them).

    The normal equations are summed with ``bincount`` (and the op pairs as results arrive, in
    :class:`TargetRecord`) rather than multiplied out: a BLAS product of a long thin matrix wakes a thread
    per core, which then spins on CPU the other processes of a bench need, and costs more as the run grows.
    """
    oo = hot.pairs
    o1 = np.bincount(hot.c, minlength=m).astype(float)
    oy = np.bincount(hot.c, weights=yz[hot.r], minlength=m)
    free = 1 if p is None else 2
    k = free + m
    xtx = np.zeros((k, k))
    xty = np.zeros(k)
    xtx[0, 0] = hot.n
    xtx[0, free:] = xtx[free:, 0] = o1
    xtx[free:, free:] = oo
    xty[0] = float(np.sum(yz))
    xty[free:] = oy
    diag = [1e-9] + [RIDGE] * m
    prior = np.zeros(k)
    if p is not None:
        po = np.bincount(hot.c, weights=p[hot.r], minlength=m)
        xtx[0, 1] = xtx[1, 0] = float(np.sum(p))
        xtx[1, 1] = float(np.sum(p * p))
        xtx[1, free:] = xtx[free:, 1] = po
        xty[1] = float(np.sum(p * yz))
        spread = float(p.std())
        diag.insert(1, PRIOR_EVALS * spread * spread if spread > 0 else 1e-9)
        prior[1] = PRIOR_CORR / spread if spread > 0 else 0.0
    penalty = np.array(diag)
    coef = np.linalg.solve(xtx + np.diag(penalty), xty + penalty * prior)
    beta = float(coef[1]) if p is not None else 0.0
    return float(coef[0]), beta, coef[free:]


def _r(x: float) -> float:
    return float(f"{x:.6g}")
