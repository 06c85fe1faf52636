"""Cell spaces: a fixed DAG whose every edge picks one op (NAS-Bench-201, TransNAS-Bench-101 micro), and
chains of layers that each pick one op (user spaces).

Genotypes are tuples of op names, one per layer in the space's layer order. Mixed-radix indices over the
canonical op order give a dense row number for benchmark tables: the *grid* of every op combination.
A space may declare that only some combinations are architectures (a :class:`~lapt.spaces.validity.Validity`);
then sizes, samples, mutations and enumerations see only those, and the built-in spaces, which have
none, keep their fast paths.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence

from lapt.errors import UserError
from lapt.spaces.base import Genotype, LayerSpec, MaskSpec, SearchSpace
from lapt.spaces.validity import Validity

NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
MUTATION_DRAWS = 4  # random single changes tried before listing every valid one


def edge_layers(edges: Sequence[tuple[int, int]], ops: Sequence[str]) -> tuple[LayerSpec, ...]:
    """Layers named ``edge_i_j`` for a cell whose node ``j`` sums ``op(node_i)`` over its in-edges."""
    return tuple(
        LayerSpec(name=f"edge_{i}_{j}", ops=tuple(ops), description=f"edge from node {i} to node {j}")
        for i, j in edges
    )


class CellSpace(SearchSpace):
    """A cell with fixed edges (or a chain); subclasses supply the string codec and the code description.

    Attributes:
        edges: the ``(i, j)`` node pair of each layer of a cell; empty for a chain.
        validity: which op combinations are architectures; None when every one is.
    """

    def __init__(self, layers: tuple[LayerSpec, ...], edges: Sequence[tuple[int, int]] = ()):
        self._layers = layers
        self._radix = tuple(len(layer.ops) for layer in layers)
        self._op_index = tuple({op: k for k, op in enumerate(layer.ops)} for layer in layers)
        self.edges = tuple(edges)
        self.validity: Validity | None = None

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        return self._layers

    def index(self, genotype: Genotype) -> int:
        """Mixed-radix row number of ``genotype`` in canonical enumeration order."""
        idx = 0
        for choice, radix, table in zip(genotype, self._radix, self._op_index, strict=True):
            idx = idx * radix + table[choice]
        return idx

    def from_index(self, idx: int) -> Genotype:
        """Inverse of :meth:`index`."""
        out: list[str] = []
        for layer, radix in zip(reversed(self._layers), reversed(self._radix), strict=True):
            idx, k = divmod(idx, radix)
            out.append(layer.ops[k])
        return tuple(reversed(out))

    def validate_genotype(self, genotype: Sequence[str]) -> Genotype:
        """Check the length and every op name; raises UserError naming the first problem."""
        if len(genotype) != len(self._layers):
            raise UserError(f"{self.name}: expected {len(self._layers)} ops, got {len(genotype)}")
        for layer, op in zip(self._layers, genotype, strict=True):
            if op not in layer.ops:
                raise UserError(
                    f"{self.name}: unknown op {op!r} on {layer.name} (allowed: {', '.join(layer.ops)})"
                )
        return tuple(genotype)

    def grid_size(self, mask: MaskSpec | None = None) -> int:
        """Op combinations the mask allows, valid or not (the length of a benchmark table's columns)."""
        mask = mask or self.full_mask()
        return math.prod(len(ops) for ops in mask.ops)

    def size(self, mask: MaskSpec | None = None) -> int:
        if self.validity is None:
            return self.grid_size(mask)
        return self.validity.count(mask or self.full_mask())

    def is_valid(self, genotype: Genotype) -> bool:
        return self.validity is None or self.validity.is_valid(genotype)

    def why_invalid(self, genotype: Genotype) -> str | None:
        return None if self.validity is None else self.validity.why_invalid(genotype)

    def region_problem(self, mask: MaskSpec) -> str | None:
        """A cell needs a path from input to output avoiding ``none``; a chain needs every layer that is
        not optional to keep an op other than ``none``; both need one valid architecture."""
        optional = self.validity.optional if self.validity is not None else frozenset()
        if self.edges:
            if not self._reaches_output(mask):
                return "the mask leaves no valid architecture: every path from input to output is 'none'"
        else:
            for i, (layer, ops) in enumerate(zip(self._layers, mask.ops, strict=True)):
                if i not in optional and all(op == "none" for op in ops):
                    return (
                        f"the mask leaves no valid architecture: {layer.name} allows only 'none', which cuts the chain"
                    )
        if self.validity is not None and self.validity.count(mask) == 0:
            example = self.validity.why_invalid(tuple(ops[0] for ops in mask.ops))
            return (
                f"the mask leaves no valid architecture: none of its {self.grid_size(mask):,} op combinations "
                f"is an architecture of the space (the first: {example})"
            )
        return None

    def layers_needing_an_op(self) -> frozenset[str]:
        """Every layer of a chain that is not optional (a cell needs a path, which no single edge is)."""
        if self.edges:
            return frozenset()
        optional = self.validity.optional if self.validity is not None else frozenset()
        return frozenset(layer.name for i, layer in enumerate(self._layers) if i not in optional)

    def _reaches_output(self, mask: MaskSpec) -> bool:
        """Is there a path from node 0 to the last node along edges that allow an op other than ``none``?"""
        live = [edge for edge, ops in zip(self.edges, mask.ops, strict=True) if any(op != "none" for op in ops)]
        reach = {0}
        for i, j in sorted(live, key=lambda e: e[1]):
            if i in reach:
                reach.add(j)
        return max(j for _, j in self.edges) in reach

    def contains(self, genotype: Genotype, mask: MaskSpec) -> bool:
        inside = all(op in allowed for op, allowed in zip(genotype, mask.ops, strict=True))
        return inside and (self.validity is None or self.validity.is_valid(genotype))

    def sample(self, mask: MaskSpec, rng: random.Random) -> Genotype:
        if self.validity is None:
            if mask.weights is not None:
                return tuple(_draw(allowed, w, rng) for allowed, w in zip(mask.ops, mask.weights, strict=True))
            return tuple(allowed[rng.randrange(len(allowed))] for allowed in mask.ops)
        g = self.validity.sample(mask, rng)  # constrained spaces draw uniformly among valid architectures
        if g is None:
            raise ValueError(f"{self.name}: the region holds no valid architecture")
        return g

    def mutate(self, genotype: Genotype, mask: MaskSpec, rng: random.Random) -> Genotype:
        if self.validity is not None:
            return self._mutate_valid(genotype, mask, rng, self.validity)
        weights = mask.weights
        child = [
            op
            if op in allowed
            else (_draw(allowed, weights[i], rng) if weights else allowed[rng.randrange(len(allowed))])
            for i, (op, allowed) in enumerate(zip(genotype, mask.ops, strict=True))
        ]
        movable = [i for i, allowed in enumerate(mask.ops) if len(allowed) > 1]
        if not movable:
            return tuple(child)
        i = movable[rng.randrange(len(movable))]
        if weights is not None:
            pairs = [(op, w) for op, w in zip(mask.ops[i], weights[i], strict=True) if op != child[i]]
            child[i] = _draw([op for op, _ in pairs], [w for _, w in pairs], rng)
        else:
            others = [op for op in mask.ops[i] if op != child[i]]
            child[i] = others[rng.randrange(len(others))]
        return tuple(child)

    def _mutate_valid(self, genotype: Genotype, mask: MaskSpec, rng: random.Random, validity: Validity) -> Genotype:
        """A valid single-change child of the projected genotype (a movable layer, then another of its ops,
        as in the unconstrained case, drawn again while the child is invalid); when a few draws find none,
        uniform among all valid single-change children; when there is none, the nearest valid
        architecture of the region (the projection itself if it is the only one)."""
        projected = tuple(
            op if op in allowed else allowed[rng.randrange(len(allowed))]
            for op, allowed in zip(genotype, mask.ops, strict=True)
        )
        valid = validity.is_valid
        movable = [i for i, allowed in enumerate(mask.ops) if len(allowed) > 1]
        for _ in range(MUTATION_DRAWS if movable else 0):
            i = movable[rng.randrange(len(movable))]
            others = [op for op in mask.ops[i] if op != projected[i]]
            child = (*projected[:i], others[rng.randrange(len(others))], *projected[i + 1 :])
            if valid(child):
                return child
        children = [
            child
            for i in movable
            for op in mask.ops[i]
            if op != projected[i] and valid(child := (*projected[:i], op, *projected[i + 1 :]))
        ]
        if children:
            return children[rng.randrange(len(children))]
        nearest = validity.nearest(projected, mask, rng)
        return projected if nearest is None else nearest

    def enumerate(self, mask: MaskSpec | None = None, limit: int = 1_000_000) -> Iterator[Genotype]:
        mask = mask or self.full_mask()
        if self.size(mask) > limit:
            raise ValueError(f"{self.name}: {self.size(mask)} architectures is above the limit {limit}")
        if self.validity is not None:
            return self.validity.enumerate(mask)
        return (tuple(g) for g in itertools.product(*mask.ops))


def _draw(ops: Sequence[str], weights: Sequence[float], rng: random.Random) -> str:
    """One op, drawn in proportion to ``weights`` (uniformly if they are all zero)."""
    total = sum(weights)
    if total <= 0:
        return ops[rng.randrange(len(ops))]
    x = rng.random() * total
    for op, w in zip(ops, weights, strict=True):
        x -= w
        if x < 0:
            return op
    return ops[-1]
