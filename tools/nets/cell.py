"""The 4-node cell shared by NAS-Bench-201 and TransNAS-Bench-101 micro.

Node 0 is the cell input; node ``j`` sums ``op_{i->j}(node_i)`` over ``i < j``; node 3 is the output.
Edges are listed in the benchmarks' order, the order of every genotype in this package.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


class DagCell(nn.Module):
    """Sum-of-edges cell over :data:`EDGES`; the caller builds one module per edge.

    Keeping the wiring here and the op tables in the space modules lets both benchmarks share one
    forward pass, so they cannot drift apart in how nodes combine.
    """

    def __init__(self, edge_ops: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(edge_ops) != len(EDGES):
            raise ValueError(f"a cell needs {len(EDGES)} edge ops, got {len(edge_ops)}")
        self.edges = nn.ModuleList(edge_ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor] = [x]
        for j in (1, 2, 3):
            terms = [self.edges[k](nodes[i]) for k, (i, dst) in enumerate(EDGES) if dst == j]
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            nodes.append(total)
        return nodes[3]
