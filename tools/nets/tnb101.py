"""TransNAS-Bench-101 micro network (``64-41414-<cell>``) with a classification head.

Faithful to the benchmark's ``MacroNet`` for the micro space: a stem that quarters the resolution
(3x3 stride-2 conv + BN, then ReLU-Conv-BN stride 2 to 64 channels), then one stage per digit of the
macro code ``41414``, each stage two cells. Digit 4 halves the resolution and doubles the channels in
the stage's first cell (edges leaving the cell input stride; skip becomes FactorizedReduce), digit 1
keeps both. Cells have no residual shortcut. The head is global average pooling + linear, the
benchmark's classification head (``structure='full'``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lapt.tools.nets.cell import EDGES, DagCell
from lapt.tools.nets.nb201 import check_cell_genotype
from lapt.tools.nets.ops import FactorizedReduce, NetworkBuildError, ReLUConvBN, Zero

TNB101_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
MACRO_CODE = "41414"


def tnb101_op(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """One TransNAS-Bench-101 micro edge op (its ``cell_ops.OPS``)."""
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 and c_in == c_out else FactorizedReduce(c_in, c_out, stride)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1)
    raise NetworkBuildError(f"tnb101: unknown op {name!r}")


def micro_cell(genotype: Sequence[str], c_in: int, c_out: int, stride: int) -> DagCell:
    """A cell whose edges from the input may stride and change channels; the others keep ``c_out``."""
    return DagCell(
        [
            tnb101_op(op, c_in, c_out, stride) if src == 0 else tnb101_op(op, c_out, c_out, 1)
            for op, (src, _dst) in zip(genotype, EDGES, strict=True)
        ]
    )


class TNB101MicroNetwork(nn.Module):
    """The ``<C>-<macro>-<cell>`` TransNAS-Bench-101 micro network with a classifier.

    Args:
        genotype: 6 op names in edge order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3.
        num_classes: classifier outputs.
        in_channels: image channels.
        C: base channels after the stem (64 in the benchmark).
        macro_code: one digit per stage: 1 normal, 2 double channels, 3 halve resolution, 4 both.
        cells_per_stage: cells stacked in each stage (2 in the benchmark).
    """

    def __init__(
        self,
        genotype: Sequence[str],
        num_classes: int = 10,
        in_channels: int = 3,
        C: int = 64,
        macro_code: str = MACRO_CODE,
        cells_per_stage: int = 2,
    ) -> None:
        super().__init__()
        self.genotype = check_cell_genotype(genotype, TNB101_OPS, "tnb101")
        if C < 2 or C % 2 or cells_per_stage < 1:
            raise NetworkBuildError(f"tnb101: C must be even and >= 2, got C={C}")
        if not macro_code or any(d not in "1234" for d in macro_code):
            raise NetworkBuildError(f"tnb101: macro code must be digits 1-4, got {macro_code!r}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            ReLUConvBN(C // 2, C, 3, 2, 1),
        )
        stages: list[nn.Module] = []
        c_prev = C
        for digit in map(int, macro_code):
            c_out = 2 * c_prev if digit % 2 == 0 else c_prev
            stride = 2 if digit > 2 else 1
            cells = [micro_cell(self.genotype, c_prev, c_out, stride)]
            cells += [micro_cell(self.genotype, c_out, c_out, 1) for _ in range(cells_per_stage - 1)]
            stages.append(nn.Sequential(*cells))
            c_prev = c_out
        self.stages = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_prev, num_classes)
        for m in self.modules():  # the benchmark's Kaiming initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(self.avgpool(x), 1))
