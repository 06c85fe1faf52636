"""Building blocks shared by the NAS-Bench-201, TransNAS-Bench-101 and DARTS networks.

Each block follows the benchmark code it stands for (xautodl ``cell_operations.py``, TransNAS-Bench-101
``cell_ops.py``, DARTS ``operations.py``), because parameter counts and FLOPs are compared with the
benchmarks' own figures: a different op order or an extra bias would silently change them.
"""

from __future__ import annotations

import torch
from torch import nn


class NetworkBuildError(ValueError):
    """A genotype or network setting that no network can be built from (odd channels, bad op name)."""


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv -> BatchNorm: the order NAS-Bench-201, TransNAS-Bench-101 and DARTS all use.

    The conv has no bias because the affine BatchNorm right after it already adds one.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int = 1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The ``none`` op: an all-zero tensor of the shape the edge would produce.

    Kept as a module (not dropped from the graph) so that a cell whose every path is ``none`` still
    yields a correctly shaped, zero output, as in the benchmarks.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x[:, :, :: self.stride, :: self.stride].mul(0.0)
        n, _, h, w = x.shape
        shape = (n, self.c_out, (h + self.stride - 1) // self.stride, (w + self.stride - 1) // self.stride)
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs whose outputs are concatenated.

    The input is padded by one pixel right/bottom before taking the offset view (TransNAS-Bench-101's
    variant); on even sizes this equals the DARTS original, and on odd sizes both halves keep one shape.
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int = 2, affine: bool = True, track_running_stats: bool = True
    ) -> None:
        super().__init__()
        if c_out % 2:
            raise NetworkBuildError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=stride, padding=0, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=stride, padding=0, bias=False)
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class ResNetBasicBlock(nn.Module):
    """NAS-Bench-201's residual reduction block between stages (stride 2, channels doubled).

    The shortcut is AvgPool(2) + 1x1 conv, exactly as in xautodl's ``ResNetBasicblock``; ``ceil_mode``
    only matters for odd sizes, where it keeps the shortcut the same shape as the 3x3 stride-2 branch.
    """

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample: nn.Module | None
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


class SepConv(nn.Sequential):
    """DARTS separable conv: (ReLU, depthwise, pointwise, BN) twice; only the first may stride."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel_size, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """DARTS dilated separable conv: ReLU, dilated depthwise, pointwise, BN."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                c_in, c_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False
            ),
            nn.Conv2d(c_in, c_out, 1, padding=0, bias=False),
            nn.BatchNorm2d(c_out),
        )


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of one branch with probability ``drop_prob`` (DARTS' regulariser)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty((x.size(0), 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask
