"""The real-training tool: datasets, the trainer, the failure-is-data trial and the JSON worker.

Modules: ``datasets`` (MNIST-5k, CIFAR-10/100, ``.npz`` loaders and the seeded split), ``device``
(device choice, threads, memory), ``trainer`` (SGD + cosine training loop), ``trial`` (build, train,
and turn failures into data), ``worker`` (JSON in, JSON out). Importing this package does not import
torch; the names below are loaded on first use so that :class:`TrainingInputError` can be caught by
code that never trains.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from lapt.tools.train.errors import NonFiniteLossError, TrainingInputError

_LAZY = {
    "TrainConfig": "lapt.tools.train.trainer",
    "Trainer": "lapt.tools.train.trainer",
    "DatasetSplits": "lapt.tools.train.datasets",
    "load_dataset": "lapt.tools.train.datasets",
    "split_indices": "lapt.tools.train.datasets",
    "run_trial": "lapt.tools.train.trial",
    "run_request": "lapt.tools.train.worker",
}

__all__ = ["NonFiniteLossError", "TrainingInputError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
