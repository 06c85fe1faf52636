"""NAS-Bench-201: a 4-node cell, 6 edges, 5 ops per edge (15,625 cells).

Arch strings look like ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...~0|...~1|...~2|``: node ``j`` lists
``op~i`` for each input node ``i``. Edge order: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3.
"""

from __future__ import annotations

import re

from lapt.errors import UserError
from lapt.spaces.base import Genotype, SearchDefaults
from lapt.spaces.cell import NB201_EDGES, CellSpace, edge_layers

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_TOKEN = re.compile(r"^([A-Za-z0-9_]+)~(\d+)$")

NB201_CODE = '''\
# NAS-Bench-201 cell: 4 nodes; node 0 is the cell input, node 3 the cell output.
# Every edge i->j (i<j) applies exactly one op; a node sums its incoming edges.
OPS = {
    "none":         lambda C: Zero(),                      # outputs zeros: removes the edge
    "skip_connect": lambda C: Identity(),                  # passes the input through unchanged
    "nor_conv_1x1": lambda C: ReLUConvBN(C, C, kernel=1),  # ReLU -> 1x1 conv -> BatchNorm
    "nor_conv_3x3": lambda C: ReLUConvBN(C, C, kernel=3),  # ReLU -> 3x3 conv -> BatchNorm
    "avg_pool_3x3": lambda C: AvgPool2d(3, stride=1, padding=1),
}

class Cell(nn.Module):
    def __init__(self, C, genotype):  # genotype: {"edge_0_1": op, ..., "edge_2_3": op}
        self.edge = {name: OPS[op](C) for name, op in genotype.items()}

    def forward(self, x0):
        x1 = self.edge["edge_0_1"](x0)
        x2 = self.edge["edge_0_2"](x0) + self.edge["edge_1_2"](x1)
        x3 = self.edge["edge_0_3"](x0) + self.edge["edge_1_3"](x1) + self.edge["edge_2_3"](x2)
        return x3

# Network: stem 3x3 conv (C=16) -> 5 cells -> residual reduction (2C) -> 5 cells
#          -> residual reduction (4C) -> 5 cells -> BN-ReLU -> global average pool -> linear.
'''


class NB201Space(CellSpace):
    """NAS-Bench-201 with op names from the benchmark."""

    name = "nb201"
    title = "NAS-Bench-201"
    tasks = ("cifar10", "cifar100", "ImageNet16-120")
    defaults = SearchDefaults(population=5, tournament=2, adapt_every=5, max_ops=2, top_target=5)

    def __init__(self) -> None:
        super().__init__(edge_layers(NB201_EDGES, NB201_OPS), NB201_EDGES)

    def to_str(self, genotype: Genotype) -> str:
        g = genotype
        return f"|{g[0]}~0|+|{g[1]}~0|{g[2]}~1|+|{g[3]}~0|{g[4]}~1|{g[5]}~2|"

    def from_str(self, arch: str) -> Genotype:
        nodes = arch.strip().split("+")
        if len(nodes) != 3:
            raise UserError(f"nb201: malformed arch string {arch!r}: expected 3 node groups joined by '+'")
        ops: list[str] = []
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise UserError(f"nb201: malformed arch string {arch!r}: node {j} must be wrapped in '|'")
            tokens = node[1:-1].split("|")
            if len(tokens) != j:
                raise UserError(f"nb201: malformed arch string {arch!r}: node {j} needs {j} inputs")
            for i, token in enumerate(tokens):
                m = _TOKEN.match(token)
                if not m or int(m.group(2)) != i:
                    raise UserError(f"nb201: malformed arch string {arch!r}: bad token {token!r}")
                ops.append(m.group(1))
        return self.validate_genotype(ops)

    def describe_code(self) -> str:
        return NB201_CODE
