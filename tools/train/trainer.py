"""The training loop: SGD with Nesterov momentum, cosine learning rate, optional label smoothing.

Short enough to read in one sitting. On CUDA it trains in bf16 autocast with channels-last tensors
and cuDNN autotuning, keeps the whole dataset on the GPU when it fits, and never synchronises with the
host inside the step loop: loss and accuracy are summed on the device and read once per epoch, where
the NaN check also happens. On CPU it runs in float32 with an explicit thread count.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from lapt.tools.train.datasets import DatasetSplits
from lapt.tools.train.device import peak_memory_mb, reset_peak_memory, resolve_device, set_threads
from lapt.tools.train.errors import NonFiniteLossError, TrainingInputError

RESIDENT_FRACTION = 0.3  # put the dataset on the GPU if it needs under this share of free memory


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (saved with the results as its config snapshot).

    Attributes:
        epochs: passes over the training split.
        batch_size: images per step.
        lr: peak learning rate; cosine-annealed to 0 over all steps.
        momentum: SGD momentum (Nesterov when ``nesterov``).
        nesterov: use Nesterov momentum.
        weight_decay: L2 penalty on every parameter.
        label_smoothing: cross-entropy label smoothing.
        grad_clip: max gradient norm, or None for no clipping.
        aux_weight: weight of an auxiliary head's loss (DARTS).
        seed: seeds Python, NumPy and torch before the network is built.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        num_threads: torch CPU threads; None means cores // workers.
        workers: processes training at once on this machine (divides the thread budget).
        augment: random crop + flip; None means the dataset's default (CIFAR yes, digits no).
        eval_batch_size: images per evaluation step.
    """

    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    aux_weight: float = 0.4
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    workers: int = 1
    augment: bool | None = None
    eval_batch_size: int = 256

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed every generator a run touches, so a network's initial weights follow from the seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class _DeviceData:
    """One split as tensors, plus how to turn a batch of stored pixels into normalised floats."""

    x: torch.Tensor
    y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    scale: float
    device: torch.device

    def batch(self, idx: torch.Tensor, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.x.device != self.device:  # not resident: gather on the host, copy asynchronously
            idx_host = idx.cpu()
            xb = self.x[idx_host].pin_memory().to(self.device, non_blocking=True)
            yb = self.y[idx_host].pin_memory().to(self.device, non_blocking=True)
        else:
            xb, yb = self.x[idx], self.y[idx]
        xb = (xb.float() * self.scale - self.mean) / self.std
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb


def _random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-image random crop (zero padding ``pad``) and horizontal flip, vectorised on the device."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), device=x.device, generator=generator)
    rows = (dy + torch.arange(h, device=x.device).view(1, h, 1)).expand(n, h, w)
    cols = (dx + torch.arange(w, device=x.device).view(1, 1, w)).expand(n, h, w)
    flip = torch.rand((n, 1, 1), device=x.device, generator=generator) < 0.5
    cols = torch.where(flip, dx + (w - 1) - torch.arange(w, device=x.device).view(1, 1, w), cols)
    batch_idx = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    out = padded[batch_idx, :, rows, cols]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


class Trainer:
    """Trains one network on one dataset split and measures it.

    Bad settings raise :class:`TrainingInputError`; a loss that turns NaN raises
    :class:`NonFiniteLossError` at the end of its epoch. Turning those into failed trials is the job of
    :func:`lapt.tools.train.trial.run_trial`.
    """

    def __init__(self, config: TrainConfig) -> None:
        _check_config(config)
        self.config = config
        self.device = resolve_device(config.device)
        self.threads = set_threads(config.num_threads, config.workers) if self.device.type == "cpu" else 0

    def _to_device(self, data: DatasetSplits, x: np.ndarray, y: np.ndarray) -> _DeviceData:
        xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            if xt.nbytes + yt.nbytes < RESIDENT_FRACTION * free:
                xt, yt = xt.to(self.device), yt.to(self.device)
        shape = (1, -1, 1, 1)
        return _DeviceData(
            xt, yt,
            torch.tensor(data.mean, device=self.device).view(shape),
            torch.tensor(data.std, device=self.device).view(shape),
            data.pixel_scale, self.device,
        )

    def fit(self, model: nn.Module, data: DatasetSplits) -> dict[str, Any]:
        """Train ``model`` on ``data.train``; return accuracies (%), loss, seconds and peak memory."""
        cfg, device = self.config, self.device
        cuda = device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
        reset_peak_memory(device)
        model = model.to(device)
        if cuda:
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        train = self._to_device(data, data.x_train, data.y_train)
        augment = data.augment if cfg.augment is None else cfg.augment
        n = len(data.y_train)
        batch = min(cfg.batch_size, n)
        steps = max(1, n // batch)  # drop the ragged last batch: no 1-image BatchNorm, fixed shapes
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                    nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * steps)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        generator = torch.Generator(device=train.x.device).manual_seed(cfg.seed)
        aug_generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        drop_path_max = float(getattr(model, "drop_path_prob", 0.0))
        loss_mean = float("nan")
        correct_total = torch.zeros((), device=device)

        start = time.perf_counter()
        for epoch in range(cfg.epochs):
            model.train()
            if drop_path_max > 0:
                cast(Any, model).drop_path_prob = drop_path_max * epoch / cfg.epochs  # DARTS schedule
            order = torch.randperm(n, device=train.x.device, generator=generator)
            loss_sum = torch.zeros((), device=device)
            correct_total = torch.zeros((), device=device)
            for step in range(steps):
                xb, yb = train.batch(order[step * batch:(step + 1) * batch], channels_last=cuda)
                if augment:
                    xb = _random_crop_flip(xb, aug_generator)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
                    out = model(xb)
                    logits, aux = (out if isinstance(out, tuple) else (out, None))
                    loss = criterion(logits, yb)
                    if aux is not None:
                        loss = loss + cfg.aux_weight * criterion(aux, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach().float() * len(yb)
                correct_total += (logits.detach().argmax(1) == yb).sum()
            loss_mean = (loss_sum / (steps * batch)).item()  # the one host sync of the epoch
            if not math.isfinite(loss_mean):
                raise NonFiniteLossError(f"training loss is {loss_mean} after epoch {epoch + 1}")
        if cuda:
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - start
        train_acc = 100.0 * correct_total.item() / (steps * batch)
        del train
        return {
            "val_acc": self.accuracy(model, data, data.x_val, data.y_val),
            "test_acc": self.accuracy(model, data, data.x_test, data.y_test),
            "train_acc": train_acc,
            "train_loss": loss_mean,
            "train_seconds": train_seconds,
            "peak_memory_mb": peak_memory_mb(device),
            "device": str(device),
            "threads": self.threads,
        }

    @torch.no_grad()
    def accuracy(self, model: nn.Module, data: DatasetSplits, x: np.ndarray, y: np.ndarray) -> float:
        """Top-1 accuracy (%) of ``model`` in eval mode on images ``x`` with labels ``y``."""
        split = self._to_device(data, x, y)
        cuda = self.device.type == "cuda"
        model.eval()
        correct = torch.zeros((), device=self.device)
        idx_all = torch.arange(len(y), device=split.x.device)
        for lo in range(0, len(y), self.config.eval_batch_size):
            xb, yb = split.batch(idx_all[lo:lo + self.config.eval_batch_size], channels_last=cuda)
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=cuda):
                out = model(xb)
            logits = out[0] if isinstance(out, tuple) else out
            correct += (logits.argmax(1) == yb).sum()
        return 100.0 * correct.item() / max(1, len(y))


def _check_config(cfg: TrainConfig) -> None:
    """Reject settings that would train nonsense, with one line naming the field."""
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.eval_batch_size < 1 or cfg.workers < 1:
        raise TrainingInputError("epochs, batch_size, eval_batch_size and workers must be >= 1")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise TrainingInputError(f"lr must be a positive number, got {cfg.lr}")
    if cfg.weight_decay < 0 or not 0 <= cfg.label_smoothing < 1:
        raise TrainingInputError("weight_decay must be >= 0 and label_smoothing in [0, 1)")
