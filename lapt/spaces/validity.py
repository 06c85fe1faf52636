"""Which op combinations of a cell or chain space are architectures.

Every combination of a built-in space is an architecture. A user space may declare rules (layers that
may be left out, but only from the end: variable depth; combinations that are not architectures) or take
its candidates from its table. Then only some combinations are architectures, and every size, sample,
mutation and enumeration must see only those: each invalid string a search proposes costs one
evaluation of its budget, and a region size that counts strings misleads whoever reads it.

Both kinds answer the same questions about a :class:`~lapt.spaces.base.MaskSpec` region (how many valid
architectures, a uniform draw, all of them, the nearest one to a given genotype). :class:`CellSpace`
consults them only when a space has one, so the built-in spaces keep their fast paths.

* :class:`RuleValidity` counts exactly by inclusion-exclusion over the forbidden combinations (each is a
  "box": a set of ops on some layers), pruning the intersections that are empty; optional layers turn
  into one box per pair of consecutive optional layers ("this one absent, the next one present"), and
  such boxes never intersect their neighbours, so the count stays cheap for deep variable-depth chains.
  Count rules ("between 1 and 4 of these layers use one of these ops") enter every term of that sum:
  the architectures of a box that satisfy them are counted by a small dynamic programme over the
  layers (the state is how many layers each rule has counted so far, capped just past its maximum), so
  sampling, sizes and mutations stay exact however sparse the rules make the space.
* :class:`TableValidity` keeps the table's rows as op codes and computes the candidates of a region
  lazily, once per region, with numpy.
"""

from __future__ import annotations

import abc
import itertools
import math
import random
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from lapt.spaces.base import Genotype, LayerSpec, MaskSpec


class GridSpace(Protocol):
    """What :class:`TableValidity` needs of a space (a :class:`~lapt.spaces.cell.CellSpace` has it): its layers
    and the codec between genotypes and positions in its grid of op combinations. A protocol, so this
    module, which the cell space imports, never imports the cell space."""

    @property
    def layers(self) -> Sequence[LayerSpec]: ...

    def grid_size(self) -> int: ...

    def index(self, genotype: Genotype) -> int: ...

    def from_index(self, index: int) -> Genotype: ...

Region = tuple[frozenset[str], ...]
T = TypeVar("T")
_CACHED_REGIONS = 256  # regions remembered per space: a run uses a handful of masks, a bench a few dozen


@dataclass(frozen=True)
class Forbid:
    """A combination that is not an architecture: every listed layer uses one of the listed ops.

    Attributes:
        layers: ``(layer index, ops)`` pairs; layers not listed may hold any op.
        reason: one line saying why such a combination is not an architecture.
    """

    layers: tuple[tuple[int, frozenset[str]], ...]
    reason: str

    def matches(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` is one of the forbidden combinations."""
        return all(genotype[i] in ops for i, ops in self.layers)


@dataclass(frozen=True)
class CountRule:
    """How many of some layers may use some ops: between ``low`` and ``high`` of ``layers`` hold one of ``ops``.

    Attributes:
        layers: indices of the layers counted (every layer, unless the rule names some).
        ops: the ops counted.
        low: at least this many (0: no minimum).
        high: at most this many (None: no maximum).
        text: the rule in words (``1 to 4 of the layers use m3 or m4``), for agents and messages.
        where: where the rule is declared (``[validity] count[0]``).
    """

    layers: tuple[int, ...]
    ops: frozenset[str]
    low: int
    high: int | None
    text: str
    where: str

    @property
    def cap(self) -> int:
        """The largest count the dynamic programme keeps apart: one past the maximum (any more is as bad), or
        the minimum when there is no maximum (any more is as good)."""
        return self.low if self.high is None else self.high + 1

    def holds(self, n: int) -> bool:
        """Whether ``n`` counted layers satisfy the rule."""
        return self.low <= n and (self.high is None or n <= self.high)

    def tally(self, genotype: Genotype) -> int:
        """How many of the rule's layers hold one of its ops in ``genotype``."""
        return sum(genotype[i] in self.ops for i in self.layers)


class _RegionCache(Generic[T]):
    """A small LRU memo keyed by a mask's allowed ops."""

    def __init__(self) -> None:
        self._data: OrderedDict[tuple[tuple[str, ...], ...], T] = OrderedDict()

    def get(self, key: tuple[tuple[str, ...], ...]) -> T | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: tuple[tuple[str, ...], ...], value: T) -> None:
        self._data[key] = value
        if len(self._data) > _CACHED_REGIONS:
            self._data.popitem(last=False)


class Validity(abc.ABC):
    """What a space's valid architectures are, asked about mask regions.

    Attributes:
        optional: indices of layers that may be absent (their mask may allow only the absent op).
        absent: the op that marks an absent layer (None when no layer is optional).
    """

    optional: frozenset[int] = frozenset()
    absent: str | None = None

    @abc.abstractmethod
    def why_invalid(self, genotype: Genotype) -> str | None:
        """One line saying why ``genotype`` is not an architecture, or None when it is one."""

    def is_valid(self, genotype: Genotype) -> bool:
        """Whether ``genotype`` is an architecture."""
        return self.why_invalid(genotype) is None

    @abc.abstractmethod
    def count(self, mask: MaskSpec) -> int:
        """Number of valid architectures the mask allows."""

    @abc.abstractmethod
    def sample(self, mask: MaskSpec, rng: random.Random) -> Genotype | None:
        """A uniform draw among the valid architectures of ``mask``; None when it has none."""

    @abc.abstractmethod
    def enumerate(self, mask: MaskSpec) -> Iterator[Genotype]:
        """Every valid architecture of ``mask``."""

    @abc.abstractmethod
    def nearest(self, genotype: Genotype, mask: MaskSpec, rng: random.Random) -> Genotype | None:
        """A valid architecture of ``mask`` other than ``genotype``, as close to it as this kind can find."""


def trailing_forbids(layer_names: Sequence[str], layer_ops: Sequence[Sequence[str]], optional: Sequence[int],
                     absent: str) -> list[Forbid]:
    """The boxes that make ``optional`` layers absent only from the end: "layer k absent, layer k+1 present"."""
    out = []
    order = sorted(optional)
    for a, b in itertools.pairwise(order):
        present = frozenset(op for op in layer_ops[b] if op != absent)
        out.append(
            Forbid(
                layers=((a, frozenset({absent})), (b, present)),
                reason=f"{layer_names[a]} is absent ({absent}), so {layer_names[b]} must be absent too "
                "(optional layers are left out from the end only)",
            )
        )
    return out


def _count_box(region: Region, counts: tuple[CountRule, ...]) -> int:
    """Architectures of the box ``region`` that satisfy every count rule (a product when there is none).

    Dynamic programme over the layers: for each vector of per-rule tallies so far (each capped at the
    rule's :attr:`~CountRule.cap`), how many partial architectures reach it.
    """
    if not counts:
        return math.prod(len(s) for s in region)
    members = [frozenset(rule.layers) for rule in counts]
    caps = [rule.cap for rule in counts]
    states: dict[tuple[int, ...], int] = {(0,) * len(counts): 1}
    for i, ops in enumerate(region):
        steps: dict[tuple[int, ...], int] = {}
        for op in ops:
            step = tuple(int(i in layers and op in rule.ops) for layers, rule in zip(members, counts, strict=True))
            steps[step] = steps.get(step, 0) + 1
        if len(steps) == 1 and not any(next(iter(steps))):
            factor = next(iter(steps.values()))
            states = {state: n * factor for state, n in states.items()}
            continue
        new: dict[tuple[int, ...], int] = {}
        for state, n in states.items():
            for step, m in steps.items():
                key = tuple(min(a + b, cap) for a, b, cap in zip(state, step, caps, strict=True))
                new[key] = new.get(key, 0) + n * m
        states = new
    return sum(n for state, n in states.items() if all(r.holds(v) for r, v in zip(counts, state, strict=True)))


def _count(region: Region, forbids: tuple[Forbid, ...], counts: tuple[CountRule, ...] = ()) -> int:
    """Architectures of ``region`` that match none of ``forbids`` and satisfy every count rule
    (inclusion-exclusion over the forbidden boxes, empty terms pruned)."""
    live = []
    for f in forbids:
        if all(region[i] & ops for i, ops in f.layers):
            if all(region[i] <= ops for i, ops in f.layers):
                return 0  # the whole region is forbidden
            live.append(f)
    total = _count_box(region, counts)
    if not live or total == 0:
        return total
    first, rest = live[0], tuple(live[1:])
    inside = list(region)
    for i, ops in first.layers:
        inside[i] = region[i] & ops
    return _count(region, rest, counts) - _count(tuple(inside), rest, counts)


class RuleValidity(Validity):
    """Validity from declared rules: optional trailing layers, forbidden combinations and count rules.

    Args:
        layer_names: the layers, in genotype order (for messages).
        layer_ops: candidate ops of each layer.
        forbids: combinations that are not architectures.
        optional: indices of the layers that may be absent, in genotype order.
        absent: the op marking an absent layer.
        counts: how many layers may use some ops.
    """

    def __init__(
        self,
        layer_names: Sequence[str],
        layer_ops: Sequence[Sequence[str]],
        forbids: Sequence[Forbid] = (),
        optional: Sequence[int] = (),
        absent: str = "none",
        counts: Sequence[CountRule] = (),
    ):
        self.optional = frozenset(optional)
        self.absent = absent if optional else None
        self.forbids = tuple(trailing_forbids(layer_names, layer_ops, optional, absent)) + tuple(forbids)
        self.count_rules = tuple(counts)
        self._boxes = tuple(f.layers for f in self.forbids)
        self._tallies = tuple((rule.layers, rule.ops, rule.low, rule.high) for rule in self.count_rules)
        self._counts: _RegionCache[int] = _RegionCache()

    def why_invalid(self, genotype: Genotype) -> str | None:
        for f in self.forbids:
            if f.matches(genotype):
                return f.reason
        for rule in self.count_rules:
            n = rule.tally(genotype)
            if not rule.holds(n):
                return f"{rule.text} ({rule.where}), but {n} {'does' if n == 1 else 'do'}"
        return None

    def is_valid(self, genotype: Genotype) -> bool:
        # Plain loops over plain tuples: this runs for every child a mutation considers.
        for layers in self._boxes:
            for i, ops in layers:
                if genotype[i] not in ops:
                    break
            else:
                return False
        for counted, ops, low, high in self._tallies:
            n = 0
            for k in counted:
                if genotype[k] in ops:
                    n += 1
            if n < low or (high is not None and n > high):
                return False
        return True

    def count(self, mask: MaskSpec) -> int:
        cached = self._counts.get(mask.ops)
        if cached is None:
            cached = _count(tuple(frozenset(ops) for ops in mask.ops), self.forbids, self.count_rules)
            self._counts.put(mask.ops, cached)
        return cached

    def sample(self, mask: MaskSpec, rng: random.Random) -> Genotype | None:
        n = self.count(mask)
        if n == 0:
            return None
        if 64 * n >= math.prod(len(ops) for ops in mask.ops):
            # Rejection from the region's box is exactly uniform; with at least 1 valid in 64 it is fast.
            while True:
                g = tuple(ops[rng.randrange(len(ops))] for ops in mask.ops)
                if self.is_valid(g):
                    return g
        # Few valid combinations: fix one layer at a time, each op drawn with the weight of what it leaves.
        fixed = [frozenset(ops) for ops in mask.ops]
        for i, ops in enumerate(mask.ops):
            weights = []
            for op in ops:
                fixed[i] = frozenset({op})
                weights.append(_count(tuple(fixed), self.forbids, self.count_rules))
            pick = rng.randrange(sum(weights))
            for op, w in zip(ops, weights, strict=True):
                if pick < w:
                    fixed[i] = frozenset({op})
                    break
                pick -= w
        return tuple(next(iter(s)) for s in fixed)

    def enumerate(self, mask: MaskSpec) -> Iterator[Genotype]:
        return (g for g in itertools.product(*mask.ops) if self.is_valid(g))

    def nearest(self, genotype: Genotype, mask: MaskSpec, rng: random.Random) -> Genotype | None:
        """A fresh uniform draw: rules spaces have single-change neighbours nearly everywhere, and the
        caller only asks when none exists."""
        g = self.sample(mask, rng)
        return None if g == genotype else g


class TableValidity(Validity):
    """Validity from a table: its rows are the only candidates (``table_only``).

    Args:
        space: the space whose table it is (for the codec and the grid layout).
        index: :meth:`CellSpace.index` of every row.
        rules: the space's rules, if any (the rows were checked against them when the table was read);
            they still say which layers are optional.
    """

    def __init__(self, space: GridSpace, index: np.ndarray, rules: Validity | None = None):
        self._space = space
        self._rows = np.unique(np.asarray(index, dtype=np.int64))
        valid = np.zeros(space.grid_size(), dtype=np.uint8)
        valid[self._rows] = 1
        self._valid = valid.tobytes()  # indexing bytes is several times cheaper than a numpy scalar read
        self._op_index = [{op: k for k, op in enumerate(layer.ops)} for layer in space.layers]
        codes = np.empty((self._rows.size, len(space.layers)), dtype=np.int16)
        rest = self._rows.copy()
        for i in range(len(space.layers) - 1, -1, -1):
            rest, codes[:, i] = np.divmod(rest, len(space.layers[i].ops))
        self._codes = codes
        self._candidates: _RegionCache[np.ndarray] = _RegionCache()
        if rules is not None:
            self.optional, self.absent = rules.optional, rules.absent

    @property
    def rows(self) -> int:
        """Number of candidate architectures (the table's rows)."""
        return int(self._rows.size)

    def is_valid(self, genotype: Genotype) -> bool:
        return self._valid[self._space.index(genotype)] == 1

    def why_invalid(self, genotype: Genotype) -> str | None:
        if self.is_valid(genotype):
            return None
        return "it is not in the table, and the space's candidates are the table's architectures (table_only)"

    def _positions(self, mask: MaskSpec) -> np.ndarray:
        """Rows (positions in ``_rows``) inside ``mask``, computed once per region."""
        cached = self._candidates.get(mask.ops)
        if cached is None:
            keep = np.ones(self._rows.size, dtype=bool)
            for i, ops in enumerate(mask.ops):
                table = self._op_index[i]
                if len(ops) == len(table):
                    continue
                allowed = np.zeros(len(table), dtype=bool)
                allowed[[table[op] for op in ops]] = True
                keep &= allowed[self._codes[:, i]]
            cached = np.flatnonzero(keep)
            self._candidates.put(mask.ops, cached)
        return cached

    def _genotype(self, position: int) -> Genotype:
        return self._space.from_index(int(self._rows[position]))

    def count(self, mask: MaskSpec) -> int:
        return int(self._positions(mask).size)

    def sample(self, mask: MaskSpec, rng: random.Random) -> Genotype | None:
        positions = self._positions(mask)
        if positions.size == 0:
            return None
        return self._genotype(int(positions[rng.randrange(positions.size)]))

    def enumerate(self, mask: MaskSpec) -> Iterator[Genotype]:
        return (self._genotype(int(p)) for p in self._positions(mask))

    def nearest(self, genotype: Genotype, mask: MaskSpec, rng: random.Random) -> Genotype | None:
        """Uniform among the region's rows that differ from ``genotype`` in the fewest layers (at least one)."""
        positions = self._positions(mask)
        if positions.size == 0:
            return None
        target = np.array([self._op_index[i][op] for i, op in enumerate(genotype)], dtype=np.int16)
        distance = (self._codes[positions] != target).sum(axis=1)
        distance[distance == 0] = len(target) + 1  # never the genotype itself
        closest = positions[distance == distance.min()]
        if distance.min() > len(target):
            return None
        return self._genotype(int(closest[rng.randrange(closest.size)]))
