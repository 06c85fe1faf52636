"""Evaluate architectures by really training them, in this process or in a worker subprocess.

Importing this module does not import torch: the in-process path imports the worker on first use, and
the subprocess path never imports torch here at all (``python -m lapt.tools.train.worker`` does).
A subprocess costs a torch start-up per trial but isolates crashes and memory; in-process is faster
for many small trials.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

WORKER_MODULE = "lapt.tools.train.worker"
_METRIC_KEYS = ("val_acc", "test_acc", "train_acc", "train_loss", "params", "flops", "train_seconds",
                "peak_memory_mb", "device", "failure")


def _as_json(value: Any) -> Any:
    """Tuples to lists (the worker's JSON form of a genotype), checked to be JSON-serialisable."""
    return json.loads(json.dumps(value))


class TrainingEvaluator:
    """Scores a genotype by training its network with fixed settings and returns the worker's result.

    Args:
        dataset: ``mnist5k`` (offline default), ``cifar10``, ``cifar100`` or ``npz:PATH``.
        data_dir: CIFAR folder (or a folder holding ``mnist_5k.csv.gz``).
        epochs: training epochs.
        batch_size: images per step.
        lr: peak learning rate (cosine schedule).
        weight_decay: L2 penalty.
        label_smoothing: cross-entropy label smoothing.
        seed: training seed (the data split is fixed separately).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        num_threads: torch CPU threads per trial (None: cores // 1).
        net: per-space network size overrides, e.g. ``{"nb201": {"C": 8, "N": 2}}``; a flat dict
            such as ``{"C": 8}`` applies to every space.
        max_train_images: cap on training images for quick runs.
        in_process: train in this process (True) or in ``python -m lapt.tools.train.worker``.
        timeout_s: subprocess time limit; a trial that exceeds it fails.
    """

    name = "train"

    def __init__(self, dataset: str = "mnist5k", data_dir: str | None = None, epochs: int = 1,
                 batch_size: int = 128, lr: float = 0.05, weight_decay: float = 5e-4,
                 label_smoothing: float = 0.0, seed: int = 0, device: str = "auto",
                 num_threads: int | None = None, net: dict[str, Any] | None = None,
                 max_train_images: int | None = None, in_process: bool = True,
                 timeout_s: float | None = None) -> None:
        self.request_fields: dict[str, Any] = {
            "dataset": dataset,
            "data_dir": data_dir,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "weight_decay": weight_decay,
            "label_smoothing": label_smoothing,
            "seed": seed,
            "device": device,
            "num_threads": num_threads,
            "max_train_images": max_train_images,
        }
        self.net = _as_json(net or {})
        self.in_process = in_process
        self.timeout_s = timeout_s

    def settings(self) -> dict[str, Any]:
        """Every setting that changes a result; the evaluation cache key (how it runs is left out)."""
        return {"evaluator": self.name, **self.request_fields, "net": self.net}

    def _net_for(self, space_name: str) -> dict[str, Any]:
        if space_name in self.net and isinstance(self.net[space_name], dict):
            return dict(self.net[space_name])
        if any(isinstance(v, dict) for v in self.net.values()):
            return {}  # per-space overrides, none for this space
        return dict(self.net)

    def request(self, space_name: str, genotype_json: Any, task: str | None = None,
                builder: dict[str, Any] | None = None) -> dict[str, Any]:
        """The worker request for one trial (also what a remote executor would send)."""
        request = {"space": space_name, "genotype": _as_json(genotype_json), **self.request_fields,
                   "net": self._net_for(space_name), "task": task}
        if builder is not None:
            request["builder"] = dict(builder)
        return request

    def evaluate(self, space_name: str, genotype_json: Any, task: str | None = None,
                 builder: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train one architecture and return the worker's result dict (never raises for a trial).

        ``task`` is recorded in the result; the data trained on is always this evaluator's dataset.
        ``builder`` (module, function, path) names the network builder of a user space.
        """
        request = self.request(space_name, genotype_json, task, builder)
        if self.in_process:
            from lapt.tools.train.worker import run_request

            return run_request(request)
        return self._run_subprocess(request)

    def _run_subprocess(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", WORKER_MODULE], input=json.dumps(request), capture_output=True,
                text=True, timeout=self.timeout_s, check=False,
            )
        except subprocess.TimeoutExpired:
            return _crashed(request, f"TimeoutExpired: worker exceeded {self.timeout_s} s")
        except OSError as exc:
            return _crashed(request, f"{type(exc).__name__}: {exc}")
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            return _crashed(request, f"WorkerCrashed: exit status {proc.returncode}: {tail[0][:300]}")
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            return _crashed(request, f"WorkerCrashed: unreadable result ({exc})")
        if not isinstance(result, dict) or "status" not in result:
            return _crashed(request, "WorkerCrashed: the result is not a JSON object with a status")
        return result


def _crashed(request: dict[str, Any], error: str) -> dict[str, Any]:
    """A failed result for a worker that died or hung, shaped like the worker's own results."""
    return {"status": "failed", "error": error, **dict.fromkeys(_METRIC_KEYS), "failure": "crash",
            "split": {}, "request": request, "task": request.get("task")}
