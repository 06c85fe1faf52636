"""TransNAS-Bench-101 micro: the NB201 cell with 4 ops per edge (4,096 cells).

Arch strings look like ``64-41414-3_13_113``: the macro skeleton ``64-41414`` then one digit per edge
grouped by target node (a: 0->1; b,c: 0->2, 1->2; d,e,f: 0->3, 1->3, 2->3) with
0=none, 1=skip_connect, 2=nor_conv_1x1, 3=nor_conv_3x3.
"""

from __future__ import annotations

import re

from lapt.errors import UserError
from lapt.spaces.base import Genotype, SearchDefaults
from lapt.spaces.cell import NB201_EDGES, CellSpace, edge_layers

TNB101_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
_PREFIX = "64-41414-"
_CELL = re.compile(r"^([0-3])_([0-3]{2})_([0-3]{3})$")

TNB101_CODE = '''\
# TransNAS-Bench-101 micro cell: 4 nodes; node 0 is the cell input, node 3 the cell output.
# Every edge i->j (i<j) applies exactly one op; a node sums its incoming edges.
OPS = {
    "none":         lambda C: Zero(),                      # outputs zeros: removes the edge
    "skip_connect": lambda C: Identity(),                  # passes the input through unchanged
    "nor_conv_1x1": lambda C: ReLUConvBN(C, C, kernel=1),  # ReLU -> 1x1 conv -> BatchNorm
    "nor_conv_3x3": lambda C: ReLUConvBN(C, C, kernel=3),  # ReLU -> 3x3 conv -> BatchNorm
}

class Cell(nn.Module):
    def __init__(self, C, genotype):  # genotype: {"edge_0_1": op, ..., "edge_2_3": op}
        self.edge = {name: OPS[op](C) for name, op in genotype.items()}

    def forward(self, x0):
        x1 = self.edge["edge_0_1"](x0)
        x2 = self.edge["edge_0_2"](x0) + self.edge["edge_1_2"](x1)
        x3 = self.edge["edge_0_3"](x0) + self.edge["edge_1_3"](x1) + self.edge["edge_2_3"](x2)
        return x3

# Encoder "64-41414": stem with 64 channels, then 5 stages of 4,1,4,1,4 cells-per-stage codes
# (4 = downsample and double channels, 1 = keep), shared by all tasks; each task adds its own decoder.
'''


class TNB101MicroSpace(CellSpace):
    """TransNAS-Bench-101 micro, keyed by op names."""

    name = "tnb101"
    title = "TransNAS-Bench-101 micro"
    tasks = (
        "class_scene",
        "class_object",
        "room_layout",
        "jigsaw",
        "segmentsemantic",
        "normal",
        "autoencoder",
    )
    defaults = SearchDefaults(population=10, tournament=5, adapt_every=10, max_ops=3, top_target=15)

    def __init__(self) -> None:
        super().__init__(edge_layers(NB201_EDGES, TNB101_OPS), NB201_EDGES)

    def to_str(self, genotype: Genotype) -> str:
        d = [str(TNB101_OPS.index(op)) for op in genotype]
        return f"{_PREFIX}{d[0]}_{d[1]}{d[2]}_{d[3]}{d[4]}{d[5]}"

    def from_str(self, arch: str) -> Genotype:
        text = arch.strip()
        if text.startswith(_PREFIX):
            text = text[len(_PREFIX) :]
        m = _CELL.match(text)
        if not m:
            raise UserError(
                f"tnb101: malformed arch string {arch!r}: expected '64-41414-a_bc_def' with digits 0-3"
            )
        digits = "".join(m.groups())
        return tuple(TNB101_OPS[int(c)] for c in digits)

    def describe_code(self) -> str:
        return TNB101_CODE
