"""DARTS evaluation network (``NetworkCIFAR`` of the DARTS code) from a genotype.

A genotype is 8 layers: ``normal_node_2..5`` then ``reduce_node_2..5``; each layer is a pair
``((op, input), (op, input))`` with distinct inputs below the node (0 = s0, 1 = s1, 2.. = earlier
intermediate nodes). Every cell concatenates nodes 2..5. Cells at 1/3 and 2/3 of the depth are
reduction cells that double the channels; the stem has 3C channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lapt.tools.nets.ops import DilConv, FactorizedReduce, NetworkBuildError, ReLUConvBN, SepConv, drop_path

DARTS_OPS: tuple[str, ...] = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

# The DARTS_V2 cell published by the DARTS paper (normal nodes 2-5, then reduction nodes 2-5), a reference
# architecture for tests and throughput benchmarks.
DARTS_V2 = (
    (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)),
    (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)),
    (("sep_conv_3x3", 1), ("skip_connect", 0)),
    (("skip_connect", 0), ("dil_conv_3x3", 2)),
    (("max_pool_3x3", 0), ("max_pool_3x3", 1)),
    (("skip_connect", 2), ("max_pool_3x3", 1)),
    (("max_pool_3x3", 0), ("skip_connect", 2)),
    (("skip_connect", 2), ("max_pool_3x3", 1)),
)
NODES = (2, 3, 4, 5)
Edge = tuple[str, int]
Layer = tuple[Edge, Edge]


def check_darts_genotype(genotype: Sequence[Sequence[Sequence[object]]]) -> tuple[Layer, ...]:
    """Normalise a DARTS genotype (lists or tuples) to tuples; NetworkBuildError on the first problem."""
    if not isinstance(genotype, (list, tuple)) or len(genotype) != 8:
        raise NetworkBuildError(f"darts: a genotype is 8 layers of two (op, input) edges, got {genotype!r}")
    layers: list[Layer] = []
    for k, layer in enumerate(genotype):
        node = NODES[k % 4]
        edges: list[Edge] = []
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise NetworkBuildError(f"darts: layer {k} must hold two (op, input) edges, got {layer!r}")
        for edge in layer:
            if not isinstance(edge, (list, tuple)) or len(edge) != 2:
                raise NetworkBuildError(f"darts: layer {k}: an edge is (op, input), got {edge!r}")
            op, src = edge[0], edge[1]
            if op not in DARTS_OPS:
                raise NetworkBuildError(f"darts: layer {k}: unknown op {op!r} (allowed: {', '.join(DARTS_OPS)})")
            if not isinstance(src, int) or isinstance(src, bool) or not 0 <= src < node:
                raise NetworkBuildError(f"darts: layer {k} (node {node}): input must be 0..{node - 1}, got {src!r}")
            edges.append((str(op), src))
        if edges[0][1] == edges[1][1]:
            raise NetworkBuildError(f"darts: layer {k} (node {node}): the two inputs must differ")
        layers.append((edges[0], edges[1]))
    return tuple(layers)


def darts_op(name: str, channels: int, stride: int) -> nn.Module:
    """One DARTS op on ``channels`` channels (DARTS ``operations.OPS``, affine BatchNorm)."""
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(channels, channels, k, stride, k // 2)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(channels, channels, k, stride, k - 1, 2)
    raise NetworkBuildError(f"darts: unknown op {name!r}")


class DartsCell(nn.Module):
    """One normal or reduction cell; edges reading s0/s1 stride 2 in a reduction cell."""

    def __init__(
        self, layers: Sequence[Layer], c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        self.inputs = [src for layer in layers for _op, src in layer]
        self.ops = nn.ModuleList(
            darts_op(op, c, 2 if reduction and src < 2 else 1) for layer in layers for op, src in layer
        )
        self.multiplier = len(layers)

    def _edge(self, k: int, states: list[torch.Tensor], drop_prob: float) -> torch.Tensor:
        op = self.ops[k]
        h: torch.Tensor = op(states[self.inputs[k]])
        if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
            h = drop_path(h, drop_prob)
        return h

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.multiplier):
            h_a, h_b = (self._edge(k, states, drop_prob) for k in (2 * i, 2 * i + 1))
            states.append(h_a + h_b)
        return torch.cat(states[2:], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier, placed after the second reduction.

    DARTS pools 8x8 maps with AvgPool(5, stride 3) to 2x2; an adaptive 2x2 pool gives the same shape
    and the same parameters for any input size (MNIST's 7x7 maps included).
    """

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),  # DARTS has inplace=True here, which rewrites the cell output
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsNetwork(nn.Module):
    """The DARTS CIFAR evaluation network.

    ``forward`` returns logits; in training mode with ``auxiliary=True`` it returns
    ``(logits, aux_logits)`` so the trainer can add the weighted auxiliary loss. ``drop_path_prob`` is
    an attribute the trainer may schedule.

    Args:
        genotype: 8 layers, normal_node_2..5 then reduce_node_2..5.
        num_classes: classifier outputs.
        in_channels: image channels.
        C: initial channels (36 in DARTS' CIFAR-10 evaluation).
        layers: number of cells (20 in DARTS).
        auxiliary: add the auxiliary head after the second reduction cell.
        drop_path_prob: initial drop-path probability (0 disables it).
    """

    def __init__(
        self,
        genotype: Sequence[Sequence[Sequence[object]]],
        num_classes: int = 10,
        in_channels: int = 3,
        C: int = 36,
        layers: int = 20,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
    ) -> None:
        super().__init__()
        self.genotype = check_darts_genotype(genotype)
        if C < 1 or layers < 3:
            raise NetworkBuildError(f"darts: need C >= 1 and layers >= 3, got C={C}, layers={layers}")
        self.drop_path_prob = drop_path_prob
        self._aux_at = 2 * layers // 3
        c_curr = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        cells: list[DartsCell] = []
        reduction_prev = False
        c_aux = c_p
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell_layers = self.genotype[4:] if reduction else self.genotype[:4]
            cell = DartsCell(cell_layers, c_pp, c_p, c_curr, reduction, reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == self._aux_at:
                c_aux = c_p
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        s0 = s1 = self.stem(x)
        aux: torch.Tensor | None = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_at and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(torch.flatten(self.global_pooling(s1), 1))
        return logits if aux is None else (logits, aux)
