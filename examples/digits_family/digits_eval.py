"""The space's own evaluator (``[evaluator] function``): trains the family's network on MNIST-5k.

``lapt run --space digits_space.toml --evaluator python ...`` calls ``evaluate(arch, task)`` for every
architecture the search proposes, in whatever process or Ray worker evaluates it. Two tasks:

* ``digits``: all 4,000 training images of lapt's fixed MNIST-5k split, 2 epochs;
* ``few_digits``: the first 500 of them, 10 epochs (the low-data regime).

Both report top-1 accuracy (%) on the split's 500 validation and 500 test images, and the parameter
count. Training is seeded and single-threaded, so an architecture scores the same every time on a given
machine. ``make_table.py`` ran this function on every architecture to write ``digits_table.csv``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from digits_family import build
from torch import nn

from lapt.tools.train.datasets import load_dataset

TASKS = {"digits": (4000, 2), "few_digits": (500, 10)}  # training images, epochs
BATCH, LR = 64, 0.05


@functools.cache
def _data() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    d = load_dataset("mnist5k")

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.from_numpy(x.astype(np.float32) / 255.0) - 0.1307) / 0.3081, torch.from_numpy(y)

    return {"train": tensors(d.x_train, d.y_train), "val": tensors(d.x_val, d.y_val),
            "test": tensors(d.x_test, d.y_test)}


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return 100.0 * (model(x).argmax(1) == y).float().mean().item()


def evaluate(arch: dict[str, str], task: str) -> dict[str, Any]:
    """Train ``arch`` for ``task`` and return its validation and test accuracy (%) and parameters (M)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    n_train, epochs = TASKS[task]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = _data()
    x, y = (t[:n_train] for t in data["train"])
    model = build(arch)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n_train, generator=order)
        for i in range(0, n_train - BATCH + 1, BATCH):
            idx = perm[i:i + BATCH]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return {
        "val": _accuracy(model, *data["val"]),
        "test": _accuracy(model, *data["test"]),
        "params": sum(p.numel() for p in model.parameters()) / 1e6,
    }
