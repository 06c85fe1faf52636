"""Parameter counts and FLOPs of a network, in the units the NAS benchmarks publish.

FLOPs are multiply-adds counted by forward hooks the way xautodl's ``get_model_infos`` (which produced
the NAS-Bench-201 cost tables) counts them: convolutions and linear layers (plus their biases) and
average/max pooling windows; BatchNorm, ReLU, additions and global pooling are free.
"""

from __future__ import annotations

import torch
from torch import nn

_EXCLUDED_PREFIXES = ("auxiliary",)


def count_params(model: nn.Module) -> int:
    """Number of parameters, leaving out an auxiliary head (it is dropped at inference)."""
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith(_EXCLUDED_PREFIXES))


def _conv_flops(module: nn.Conv2d, output: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    per_position = kh * kw * module.in_channels * module.out_channels // module.groups
    positions = output.shape[0] * output.shape[2] * output.shape[3]
    bias = module.out_channels * positions if module.bias is not None else 0
    return per_position * positions + bias


def _pool_flops(module: nn.AvgPool2d | nn.MaxPool2d, output: torch.Tensor) -> int:
    k = module.kernel_size
    kh, kw = (k, k) if isinstance(k, int) else k
    return output.numel() * kh * kw


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass on one input of ``input_shape`` (C, H, W), batch 1.

    Runs in eval mode without gradients on the model's current device, then restores the mode, so the
    BatchNorm running statistics are untouched.
    """
    total = 0

    def hook(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += _conv_flops(module, output)
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features * output.shape[0]
            if module.bias is not None:
                total += module.out_features * output.shape[0]
        elif isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
            total += _pool_flops(module, output)

    kinds = (nn.Conv2d, nn.Linear, nn.AvgPool2d, nn.MaxPool2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
