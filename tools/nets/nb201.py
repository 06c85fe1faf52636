"""NAS-Bench-201 network from a genotype (the benchmark's own skeleton, xautodl ``TinyNetwork``).

stem 3x3 conv + BN -> N cells (C) -> residual reduction (2C) -> N cells -> residual reduction (4C)
-> N cells -> BN-ReLU -> global average pool -> linear. With C=16, N=5, 10 classes and 32x32 inputs
the parameter count and FLOPs equal the benchmark's published costs (checked in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lapt.tools.nets.cell import DagCell
from lapt.tools.nets.ops import NetworkBuildError, ReLUConvBN, ResNetBasicBlock, Zero

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def check_cell_genotype(genotype: Sequence[str], ops: Sequence[str], space: str) -> tuple[str, ...]:
    """Return the genotype as a tuple, or raise NetworkBuildError naming the first bad entry."""
    if not isinstance(genotype, (list, tuple)) or len(genotype) != 6:
        raise NetworkBuildError(f"{space}: a genotype is a list of 6 op names, got {genotype!r}")
    for k, op in enumerate(genotype):
        if op not in ops:
            raise NetworkBuildError(f"{space}: unknown op {op!r} on edge {k} (allowed: {', '.join(ops)})")
    return tuple(genotype)


def nb201_op(name: str, channels: int) -> nn.Module:
    """One NAS-Bench-201 edge op; every edge keeps the channel count and the resolution."""
    if name == "none":
        return Zero(channels, channels, 1)
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise NetworkBuildError(f"nb201: unknown op {name!r}")


class NB201Network(nn.Module):
    """The NAS-Bench-201 evaluation network for one cell genotype.

    Args:
        genotype: 6 op names in edge order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3.
        num_classes: size of the classifier output.
        in_channels: image channels (3 for CIFAR, 1 for MNIST).
        C: channels of the first stage; stages use C, 2C, 4C.
        N: cells per stage.
    """

    def __init__(
        self, genotype: Sequence[str], num_classes: int = 10, in_channels: int = 3, C: int = 16, N: int = 5
    ) -> None:
        super().__init__()
        self.genotype = check_cell_genotype(genotype, NB201_OPS, "nb201")
        if C < 1 or N < 1:
            raise NetworkBuildError(f"nb201: C and N must be positive, got C={C}, N={N}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        cells: list[nn.Module] = []
        c_prev = C
        for stage, c_stage in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                cells.append(ResNetBasicBlock(c_prev, c_stage, 2))
            cells.extend(DagCell([nb201_op(op, c_stage) for op in self.genotype]) for _ in range(N))
            c_prev = c_stage
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(x), 1))
