"""One training trial from genotype to result dict, where failures become data.

A search must go on when one architecture cannot be trained: a NaN loss, CUDA running out of memory
or a network that cannot be built all yield ``status="failed"`` with the reason, and the memory the
trial held is released before returning. Bad *input* (unknown dataset, CUDA missing) is different: it
is raised as :class:`TrainingInputError` before anything is built, so the caller can tell the two apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from lapt.tools.nets import NetworkBuildError, build_network, count_flops, count_params
from lapt.tools.train.datasets import DatasetSplits
from lapt.tools.train.device import is_out_of_memory, peak_memory_mb, release_memory
from lapt.tools.train.errors import NonFiniteLossError
from lapt.tools.train.trainer import TrainConfig, Trainer, seed_everything
from lapt.tools.train.user_code import import_callable, user_output_to_stderr

RESULT_KEYS = ("status", "val_acc", "test_acc", "train_acc", "train_loss", "params", "flops",
               "train_seconds", "peak_memory_mb", "device", "error", "failure", "split")


def _failure_kind(exc: BaseException) -> str:
    """A short machine-readable cause: nan, oom, build or error."""
    if isinstance(exc, NonFiniteLossError):
        return "nan"
    if is_out_of_memory(exc):
        return "oom"
    if isinstance(exc, NetworkBuildError):
        return "build"
    return "error"


def empty_result(status: str, error: str | None, device: str | None = None,
                 split: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A result with every metric set to None: the shape of failed and invalid trials."""
    result: dict[str, Any] = dict.fromkeys(RESULT_KEYS)
    result.update(status=status, error=error, device=device, split=dict(split or {}))
    return result


def _build(space: str, genotype: Any, data: DatasetSplits, net: Mapping[str, Any],
           builder: Mapping[str, Any] | None) -> nn.Module:
    """The built-in network of ``space``, or what a user space's builder returns (it must be a module)."""
    if builder is None:
        return build_network(space, genotype, num_classes=data.num_classes, in_channels=data.in_channels, **net)
    build = import_callable(builder["module"], builder["function"], builder.get("path"))
    model = build(genotype, num_classes=data.num_classes, in_channels=data.in_channels, **net)
    if not isinstance(model, nn.Module):
        raise NetworkBuildError(f"{builder['module']}:{builder['function']} returned a {type(model).__name__}, "
                                "not a torch.nn.Module")
    return model


def run_trial(space: str, genotype: Any, data: DatasetSplits, config: TrainConfig,
              net: Mapping[str, Any] | None = None, builder: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the network of ``genotype``, train it on ``data`` and report; never raises for a trial.

    ``builder`` (module, function, path) names a user space's network builder; without it the network
    is the built-in one of ``space``.

    Returns:
        ``status`` ("ok" or "failed"), ``val_acc``/``test_acc``/``train_acc`` (%), ``train_loss``,
        ``params`` (millions), ``flops`` (millions of multiply-adds for one image), ``train_seconds``,
        ``peak_memory_mb``, ``device``, ``error`` (None or ``"Type: message"``), ``failure`` (None, or
        ``"nan"``, ``"oom"``, ``"build"``, ``"error"``) and ``split`` (image counts per split).

    Raises:
        TrainingInputError: bad settings (device, threads, config fields), before any training.
    """
    trainer = Trainer(config)  # input errors surface here, outside the failure boundary
    device = trainer.device
    result = empty_result("failed", None, str(device), data.sizes)
    model = None
    try:
        seed_everything(config.seed)
        with user_output_to_stderr():  # a user network may print in forward(); stdout is for results
            model = _build(space, genotype, data, dict(net or {}), builder)
            result["params"] = count_params(model) / 1e6
            result["flops"] = count_flops(model, data.image_shape) / 1e6
            metrics = trainer.fit(model, data)
        metrics.pop("threads", None)
        result.update(metrics, status="ok")
    except (Exception, SystemExit) as exc:  # failure-is-data boundary: any error of one trial (sys.exit() in a
        # network builder included) is its result, not a crash
        result["failure"] = _failure_kind(exc)
        result["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        result["peak_memory_mb"] = peak_memory_mb(device)
    finally:
        del model
        release_memory(device)
    return result
