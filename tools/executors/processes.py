"""The ``processes`` executor: a pool of spawned worker processes on this machine.

Spawned, not forked: a fork of a process holding LangGraph threads, a tqdm bar or torch state is
unsafe. Each worker limits its threads so that ``workers x threads_per_trial <= cores``, and builds each
evaluator once (tables load once per worker process). A worker that dies breaks the whole pool
(``BrokenProcessPool`` for every job in flight): the pool is replaced, and each lost job is retried
alone in a one-off process, so a job that kills its worker every time cannot take others with it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from lapt.tools.evaluation import Outcome
from lapt.tools.executors.base import Executor, available_cores
from lapt.tools.executors.jobs import Job, run_job

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _init_worker(threads: int) -> None:
    """Runs first in every worker: cap the BLAS/OpenMP threads before numpy or torch load."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)


class ProcessExecutor(Executor):
    """Evaluates in ``workers`` spawned processes (concurrent.futures with the spawn context)."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.threads_per_trial = max(1, available_cores() // workers)
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pool = self._new_pool(workers)
        self._closed = False

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=self._context, initializer=_init_worker,
            initargs=(self.threads_per_trial,),
        )

    def _start(self, job: Job) -> tuple[ProcessPoolExecutor, Future[Outcome], bool]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the process executor is closed")
            pool = self._pool
        try:
            return pool, pool.submit(run_job, job), False
        except BrokenProcessPool:
            self._replace(pool)
            raise

    def _start_retry(self, job: Job) -> tuple[ProcessPoolExecutor, Future[Outcome], bool]:
        """The second attempt runs alone in a one-off worker process."""
        pool = ProcessPoolExecutor(max_workers=1, mp_context=self._context, initializer=_init_worker,
                                   initargs=(self.threads_per_trial,))
        return pool, pool.submit(run_job, job), True

    def _wait(self, handle: tuple[ProcessPoolExecutor, Future[Outcome], bool]) -> Outcome:
        pool, future, one_off = handle
        try:
            return future.result()
        except BrokenProcessPool:
            if not one_off:
                self._replace(pool)
            raise
        finally:
            if one_off:
                pool.shutdown(wait=False, cancel_futures=True)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Swap in a fresh pool once, however many threads saw the same pool break."""
        with self._lock:
            if self._pool is broken and not self._closed:
                self._pool = self._new_pool(self.workers)
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        pool.shutdown(wait=True, cancel_futures=True)
