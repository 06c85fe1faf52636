"""Device choice, CPU thread budget and memory bookkeeping for training.

On the small CPU machines this project runs on, torch threads times worker processes must not exceed
the cores (oversubscription slows training about 15x), so the thread count is always set explicitly.
"""

from __future__ import annotations

import gc
import os
import sys

import torch

from lapt.tools.train.errors import TrainingInputError


def resolve_device(name: str) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a device that exists here.

    Raises:
        TrainingInputError: an unknown name, or CUDA asked for on a machine without it.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise TrainingInputError(f"device={name!r} requested but CUDA is not available on this machine")
        if name != "cuda" and int(name[5:]) >= torch.cuda.device_count():
            raise TrainingInputError(f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(name)
    raise TrainingInputError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)")


def default_threads(workers: int = 1) -> int:
    """Threads per process so that threads x ``workers`` processes fit the machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def set_threads(num_threads: int | None, workers: int = 1) -> int:
    """Set torch's intra-op threads (``num_threads``, else the per-worker share) and return the count."""
    threads = num_threads if num_threads is not None else default_threads(workers)
    if threads < 1:
        raise TrainingInputError(f"num_threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh peak-memory window on CUDA (CPU peak RSS cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated by tensors, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource  # POSIX only
    except ImportError:
        return float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def release_memory(device: torch.device) -> None:
    """Give memory back after a trial (the caller drops its references first)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA OOM, including the plain RuntimeError some kernels raise for it."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
