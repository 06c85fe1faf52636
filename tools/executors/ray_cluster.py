"""The ``ray`` executor: one Ray task per evaluation, on a local Ray that lapt starts or on a cluster.

A local Ray is bound to 127.0.0.1 only. ``ray.init(_node_ip_address="127.0.0.1")`` alone is not enough
on Linux: Ray swaps a loopback address for the machine's reachable IP and its gRPC servers listen on
every interface unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set before ``ray`` is imported (Ray's
single-machine mode; checked here with ``ss -ltn``: every Ray socket then listens on 127.0.0.1). So lapt
sets it before importing Ray, refuses to start a local Ray when Ray was already imported without it,
and checks the node address after start. Usage statistics stay off.

Tasks are started with ``max_retries=0`` so that the one retry of the executor contract is the only
one, and it is visible in the trial's extras.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from typing import Any

from lapt.errors import UserError
from lapt.tools.evaluation import Outcome
from lapt.tools.executors.base import Executor, available_cores
from lapt.tools.executors.calls import Interrupted
from lapt.tools.executors.jobs import Job, run_job

INSTALL_HINT = "--executor ray needs Ray: pip install 'lapt[ray]'"
LOOPBACK = "127.0.0.1"
WAIT_POLL_S = 0.1
"""How often a thread waiting for a Ray task looks whether the run was interrupted."""
_LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def ray_installed() -> bool:
    """Whether the optional ``ray`` extra is importable."""
    return importlib.util.find_spec("ray") is not None


def _import_ray_for_local() -> Any:
    """Import Ray in single-machine (loopback) mode; UserError if that can no longer be arranged."""
    if "ray" not in sys.modules:
        os.environ.update(_LOCAL_ENV)
    import ray
    from ray._private import ray_constants

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise UserError(
            "ray was imported before lapt could keep it on 127.0.0.1: set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
            "before importing ray, or pass --ray-address of a cluster you started"
        )
    os.environ.update(_LOCAL_ENV)  # inherited by the raylet, the GCS and the workers
    return ray


class RayExecutor(Executor):
    """Evaluates each job as a Ray task with ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs.

    Args:
        workers: CPUs of the local Ray that lapt starts (default: this machine's cores); ignored with
            ``address``.
        address: an existing cluster (``ray://...`` or ``HOST:PORT``), or None to start a local one.
        cpus_per_trial: Ray CPUs one evaluation reserves (Ray also sets its OMP threads to this).
        gpus_per_trial: Ray GPUs one evaluation reserves (fractions share a GPU).
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, cpus_per_trial: float = 1.0,
                 gpus_per_trial: float = 0.0) -> None:
        if not ray_installed():
            raise UserError(INSTALL_HINT)
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise UserError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        self.address = address
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.num_cpus = workers or available_cores()
        self.workers = max(1, int(self.num_cpus // cpus_per_trial))
        self.threads_per_trial = max(1, int(cpus_per_trial))
        self._lock = threading.RLock()  # re-entrant: interrupt() may run in a signal handler
        self._in_flight: set[Any] = set()
        self._ray: Any = None
        self._remote: Any = None
        self._owns_ray = False
        self._ensure_started()

    def _ensure_started(self) -> Any:
        """Start (or join) Ray now, in the thread that builds the executor.

        Not lazily on the first job: that runs in a ToolNode pool thread, and Ray's daemons are started
        with a parent-death signal that Linux sends when the *thread* that started them exits, so the
        GCS would die with the pool thread a moment after the first batch (seen here: "Failed to connect
        to GCS within 60 seconds").
        """
        with self._lock:
            if self._remote is not None:
                return self._remote
            if self.address is None:
                ray = _import_ray_for_local()
                if not ray.is_initialized():
                    ray.init(num_cpus=self.num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK,
                             log_to_driver=False, logging_level="ERROR", configure_logging=True)
                    self._owns_ray = True
                    self._check_loopback(ray)
            else:
                import ray

                if not ray.is_initialized():
                    ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
                    self._owns_ray = True
            self._ray = ray
            self._remote = ray.remote(num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial,
                                      max_retries=0)(run_job)
            return self._remote

    def _check_loopback(self, ray: Any) -> None:
        addresses = {node.get("NodeManagerAddress") for node in ray.nodes()}
        if addresses != {LOOPBACK}:
            ray.shutdown()
            self._owns_ray = False
            raise RuntimeError(f"local Ray started on {sorted(addresses)}, not {LOOPBACK}: stopped it")

    def _start(self, job: Job) -> Any:
        ref = self._ensure_started().remote(job)
        with self._lock:
            self._in_flight.add(ref)
        return ref

    def _wait(self, handle: Any) -> Outcome:
        # Polled rather than one blocking ray.get: Ctrl-C (interrupt()) must free every waiting thread at
        # once, and no Ray call is made from the signal handler itself.
        while not self._ray.wait([handle], timeout=WAIT_POLL_S)[0]:
            if self.interrupted:
                raise Interrupted("the run was interrupted")
        with self._lock:
            self._in_flight.discard(handle)
        result = self._ray.get(handle)
        return result if isinstance(result, Outcome) else Outcome.model_validate(result)

    def close(self) -> None:
        with self._lock:
            if self.interrupted and self._ray is not None:  # on a cluster of its own, a hung task runs on
                for ref in self._in_flight:
                    with contextlib.suppress(Exception):  # best effort: the task may be gone already
                        self._ray.cancel(ref, force=True)
            self._in_flight.clear()
            if self._owns_ray and self._ray is not None and self._ray.is_initialized():
                self._ray.shutdown()
            self._owns_ray = False
            self._remote = None
