"""In-process executors: ``local`` (one evaluation at a time, the default) and ``threads``."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from lapt.tools.evaluation import Outcome
from lapt.tools.executors.base import Executor, available_cores
from lapt.tools.executors.jobs import Job, run_job


class LocalExecutor(Executor):
    """Evaluates in the calling process, one job at a time even when called from several threads.

    One at a time because an in-process training evaluator already uses every core; two trainings in
    threads of one process would fight over them.
    """

    name = "local"

    def __init__(self) -> None:
        self.workers = 1
        self.threads_per_trial = available_cores()
        self._lock = threading.Lock()

    def _start(self, job: Job) -> Any:
        return job  # deferred: runs in _wait, under the lock

    def _wait(self, handle: Any) -> Outcome:
        with self._lock:
            return run_job(handle)


class ThreadExecutor(Executor):
    """Evaluates in a pool of threads of this process: for evaluators that release the GIL or wait
    on something else (torch kernels, a remote service). ``workers x threads_per_trial <= cores``."""

    name = "threads"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.threads_per_trial = max(1, available_cores() // workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lapt-eval")

    def _start(self, job: Job) -> Future[Outcome]:
        return self._pool.submit(run_job, job)

    def _wait(self, handle: Future[Outcome]) -> Outcome:
        return handle.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
