"""A small convolutional network family for 28x28 digits: 2 to 4 blocks, each one op.

    stem (3x3 conv, stride 2, C channels) -> block_1 -> block_2 -> 2x2 max pool
        -> [block_3 -> [block_4]] -> ReLU -> global average pool -> linear

Every block keeps the width C. ``block_3`` and ``block_4`` are optional: the op ``none`` leaves a block
out (the space file's ``[validity]`` makes sure ``block_4`` is only present when ``block_3`` is). This is
the space's network builder (``[evaluator] network``), trained by lapt's built-in trainer with
``--evaluator train``; ``digits_eval.py`` trains it with a loop of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

OPS: dict[str, Callable[[int], nn.Module]] = {
    "nor_conv_3x3": lambda c: nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)),
    "nor_conv_1x1": lambda c: nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)),
    "avg_pool_3x3": lambda c: nn.AvgPool2d(3, stride=1, padding=1),
}


def build(arch: dict[str, str], num_classes: int = 10, in_channels: int = 1, C: int = 16) -> nn.Module:
    """The network of ``arch`` (block name -> op name, in order), with ``C`` channels."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C)]
    for name, op in arch.items():
        if op == "none":
            continue
        if op not in OPS:
            raise ValueError(f"{name}: unknown op {op!r} (known: {', '.join(OPS)})")
        layers.append(OPS[op](C))
        if name == "block_2":
            layers.append(nn.MaxPool2d(2))
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(C, num_classes)]
    return nn.Sequential(*layers)
