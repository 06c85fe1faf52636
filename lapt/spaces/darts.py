"""DARTS: normal and reduction cells, 4 intermediate nodes each with 2 inputs and an op per input.

A layer here is one intermediate node (``normal_node_2`` ... ``reduce_node_5``); its choice is a pair of
``(op, input)`` edges with distinct inputs among the earlier states (0 and 1 are the two previous cells'
outputs, 2..5 the intermediate nodes). Each pair is kept sorted by input, so one architecture has one
genotype. The string format is the one printed by the DARTS paper's code::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

It is parsed with regular expressions; nothing is ever evaluated.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Iterator

from lapt.errors import UserError
from lapt.spaces.base import Genotype, LayerSpec, MaskSpec, SearchDefaults, SearchSpace

DARTS_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
CELLS = ("normal", "reduce")
NODES = (2, 3, 4, 5)

_LIST = {cell: re.compile(rf"\b{cell}\s*=\s*\[(.*?)\]", re.S) for cell in CELLS}
_EDGE = re.compile(r"\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*,\s*(\d+)\s*\)")

DARTS_CODE = '''\
# DARTS cell: inputs s0 = output of the cell before last, s1 = output of the previous cell.
# Intermediate nodes 2..5 each take exactly TWO edges from distinct earlier states and sum them;
# the cell output concatenates nodes 2..5. A reduction cell applies stride 2 on edges from s0/s1.
OPS = {
    "max_pool_3x3": lambda C, stride: MaxPool2d(3, stride, padding=1),
    "avg_pool_3x3": lambda C, stride: AvgPool2d(3, stride, padding=1),
    "skip_connect": lambda C, stride: Identity() if stride == 1 else FactorizedReduce(C, C),
    "sep_conv_3x3": lambda C, stride: SepConv(C, C, 3, stride, padding=1),   # depthwise-separable, twice
    "sep_conv_5x5": lambda C, stride: SepConv(C, C, 5, stride, padding=2),
    "dil_conv_3x3": lambda C, stride: DilConv(C, C, 3, stride, padding=2, dilation=2),
    "dil_conv_5x5": lambda C, stride: DilConv(C, C, 5, stride, padding=4, dilation=2),
}

class Cell(nn.Module):
    def __init__(self, C, nodes):  # nodes: {"normal_node_2": [(op, input), (op, input)], ...}
        self.edges = {node: [(OPS[op](C, stride_for(input)), input) for op, input in pair]
                      for node, pair in nodes.items()}

    def forward(self, s0, s1):
        states = [preprocess0(s0), preprocess1(s1)]
        for node in (2, 3, 4, 5):
            (op_a, in_a), (op_b, in_b) = self.edges[f"node_{node}"]
            states.append(op_a(states[in_a]) + op_b(states[in_b]))
        return torch.cat(states[2:], dim=1)

# Network: stem conv -> cells stacked; reduction cells at 1/3 and 2/3 of depth double the channels;
# global average pool -> linear classifier. Normal and reduction cells have separate genotypes.
'''


def _pairs(allowed_inputs: tuple[int, ...]) -> list[tuple[int, int]]:
    return list(itertools.combinations(sorted(allowed_inputs), 2))


class DartsSpace(SearchSpace):
    """The DARTS CNN space; a mask limits both the ops and the inputs of every node."""

    name = "darts"
    title = "DARTS"
    tasks = ()
    defaults = SearchDefaults(population=5, tournament=2, adapt_every=5, max_ops=3, top_target=5)

    def __init__(self) -> None:
        self._layers = tuple(
            LayerSpec(
                name=f"{cell}_node_{node}",
                ops=DARTS_OPS,
                inputs=tuple(range(node)),
                description=f"{cell} cell, node {node}: two edges from distinct states among 0..{node - 1}",
            )
            for cell in CELLS
            for node in NODES
        )

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        return self._layers

    # -- codec ---------------------------------------------------------------------------------
    def to_str(self, genotype: Genotype) -> str:
        parts = []
        for c, cell in enumerate(CELLS):
            edges = [edge for pair in genotype[4 * c : 4 * c + 4] for edge in pair]
            body = ", ".join(f"('{op}', {i})" for op, i in edges)
            parts.append(f"{cell}=[{body}], {cell}_concat=[2, 3, 4, 5]")
        return f"Genotype({parts[0]}, {parts[1]})"

    def from_str(self, arch: str) -> Genotype:
        layers: list[tuple[tuple[str, int], tuple[str, int]]] = []
        for cell in CELLS:
            m = _LIST[cell].search(arch)
            if not m:
                raise UserError(f"darts: malformed genotype: no '{cell}=[...]' list in {arch[:80]!r}")
            edges = [(op, int(i)) for op, i in _EDGE.findall(m.group(1))]
            if len(edges) != 8:
                raise UserError(f"darts: {cell} cell needs 8 (op, input) edges, got {len(edges)}")
            for k, node in enumerate(NODES):
                pair = edges[2 * k : 2 * k + 2]
                for op, i in pair:
                    if op not in DARTS_OPS:
                        raise UserError(f"darts: unknown op {op!r} (allowed: {', '.join(DARTS_OPS)})")
                    if not 0 <= i < node:
                        raise UserError(f"darts: {cell} node {node} cannot take input {i} (allowed 0..{node - 1})")
                if pair[0][1] == pair[1][1]:
                    raise UserError(f"darts: {cell} node {node} takes input {pair[0][1]} twice")
                a, b = sorted(pair, key=lambda e: (e[1], e[0]))
                layers.append((a, b))
        return tuple(layers)

    # -- masks ---------------------------------------------------------------------------------
    def size(self, mask: MaskSpec | None = None) -> int:
        mask = mask or self.full_mask()
        return math.prod(
            math.comb(len(inputs), 2) * len(ops) ** 2 for ops, inputs in zip(mask.ops, mask.inputs, strict=True)
        )

    def region_problem(self, mask: MaskSpec) -> str | None:
        """A node takes two edges from distinct states, so it needs two allowed inputs."""
        for layer, inputs in zip(self._layers, mask.inputs, strict=True):
            if len(set(inputs)) < 2:
                return f"{layer.name}: a node needs at least 2 distinct allowed inputs"
        return None

    def contains(self, genotype: Genotype, mask: MaskSpec) -> bool:
        return all(
            op in ops and i in inputs
            for pair, ops, inputs in zip(genotype, mask.ops, mask.inputs, strict=True)
            for op, i in pair
        )

    def _sample_layer(self, ops: tuple[str, ...], inputs: tuple[int, ...], rng: random.Random) -> tuple:
        i, j = sorted(rng.sample(inputs, 2))
        return ((ops[rng.randrange(len(ops))], i), (ops[rng.randrange(len(ops))], j))

    def sample(self, mask: MaskSpec, rng: random.Random) -> Genotype:
        return tuple(
            self._sample_layer(ops, inputs, rng) for ops, inputs in zip(mask.ops, mask.inputs, strict=True)
        )

    def mutate(self, genotype: Genotype, mask: MaskSpec, rng: random.Random) -> Genotype:
        child = list(genotype)
        for k, (pair, ops, inputs) in enumerate(zip(genotype, mask.ops, mask.inputs, strict=True)):
            if not all(i in inputs for _, i in pair):
                child[k] = self._sample_layer(ops, inputs, rng)
            else:
                child[k] = tuple(
                    (op if op in ops else ops[rng.randrange(len(ops))], i) for op, i in pair
                )
        movable = [
            k for k, (ops, inputs) in enumerate(zip(mask.ops, mask.inputs, strict=True))
            if len(ops) > 1 or len(inputs) > 2
        ]
        if not movable:
            return tuple(child)
        k = movable[rng.randrange(len(movable))]
        ops, inputs = mask.ops[k], mask.inputs[k]
        edges = [list(e) for e in child[k]]
        e = rng.randrange(2)
        change_op = len(ops) > 1 and (len(inputs) <= 2 or rng.random() < 0.5)
        if change_op:
            others = [op for op in ops if op != edges[e][0]]
            edges[e][0] = others[rng.randrange(len(others))]
        else:
            taken = {edges[0][1], edges[1][1]}
            free = [i for i in inputs if i not in taken]
            edges[e][1] = free[rng.randrange(len(free))]
        a, b = sorted(((str(op), int(i)) for op, i in edges), key=lambda x: (x[1], x[0]))
        child[k] = (a, b)
        return tuple(child)

    def enumerate(self, mask: MaskSpec | None = None, limit: int = 1_000_000) -> Iterator[Genotype]:
        mask = mask or self.full_mask()
        if self.size(mask) > limit:
            raise ValueError(f"darts: {self.size(mask)} architectures is above the limit {limit}")
        per_layer = [
            [((oa, i), (ob, j)) for i, j in _pairs(inputs) for oa in ops for ob in ops]
            for ops, inputs in zip(mask.ops, mask.inputs, strict=True)
        ]
        return (tuple(g) for g in itertools.product(*per_layer))

    def describe_code(self) -> str:
        return DARTS_CODE

    def describe_genotype(self, genotype: Genotype) -> dict[str, list[list]]:
        return {
            layer.name: [[op, i] for op, i in pair] for layer, pair in zip(self._layers, genotype, strict=True)
        }
