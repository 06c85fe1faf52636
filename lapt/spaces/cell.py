"""Cell spaces: a fixed DAG whose every edge picks one op (NAS-Bench-201, TransNAS-Bench-101 micro).

Genotypes are tuples of op names, one per edge in the space's edge order. Mixed-radix indices over the
canonical op order give a dense row number for benchmark tables.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence

from lapt.errors import UserError
from lapt.spaces.base import Genotype, LayerSpec, MaskSpec, SearchSpace

NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def edge_layers(edges: Sequence[tuple[int, int]], ops: Sequence[str]) -> tuple[LayerSpec, ...]:
    """Layers named ``edge_i_j`` for a cell whose node ``j`` sums ``op(node_i)`` over its in-edges."""
    return tuple(
        LayerSpec(name=f"edge_{i}_{j}", ops=tuple(ops), description=f"edge from node {i} to node {j}")
        for i, j in edges
    )


class CellSpace(SearchSpace):
    """A cell with fixed edges; subclasses supply the string codec and the code description."""

    def __init__(self, layers: tuple[LayerSpec, ...]):
        self._layers = layers
        self._radix = tuple(len(layer.ops) for layer in layers)
        self._op_index = tuple({op: k for k, op in enumerate(layer.ops)} for layer in layers)

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

    def size(self, mask: MaskSpec | None = None) -> int:
        mask = mask or self.full_mask()
        return math.prod(len(ops) for ops in mask.ops)

    def contains(self, genotype: Genotype, mask: MaskSpec) -> bool:
        return all(op in allowed for op, allowed in zip(genotype, mask.ops, strict=True))

    def sample(self, mask: MaskSpec, rng: random.Random) -> Genotype:
        return tuple(allowed[rng.randrange(len(allowed))] for allowed in mask.ops)

    def mutate(self, genotype: Genotype, mask: MaskSpec, rng: random.Random) -> Genotype:
        child = [
            op if op in allowed else allowed[rng.randrange(len(allowed))]
            for op, allowed in zip(genotype, mask.ops, strict=True)
        ]
        movable = [i for i, allowed in enumerate(mask.ops) if len(allowed) > 1]
        if not movable:
            return tuple(child)
        i = movable[rng.randrange(len(movable))]
        others = [op for op in mask.ops[i] if op != child[i]]
        child[i] = others[rng.randrange(len(others))]
        return tuple(child)

    def enumerate(self, mask: MaskSpec | None = None, limit: int = 1_000_000) -> Iterator[Genotype]:
        mask = mask or self.full_mask()
        if self.size(mask) > limit:
            raise ValueError(f"{self.name}: {self.size(mask)} architectures is above the limit {limit}")
        return (tuple(g) for g in itertools.product(*mask.ops))
