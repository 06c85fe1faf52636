"""The ``processes`` executor: a pool of spawned worker processes on this machine.

Spawned, not forked: a fork of a process holding LangGraph threads, a tqdm bar or torch state is
unsafe. Each worker limits its threads so that ``workers x threads_per_trial <= cores``, and builds each
evaluator once (tables load once per worker process). A worker that dies breaks the whole pool
(``BrokenProcessPool`` for every job in flight): the pool is replaced, and each lost job is retried
alone in a one-off process, so a job that kills its worker every time cannot take others with it.

Workers die with the run. A run killed with SIGKILL runs no clean-up, and its workers (and with them
multiprocessing's resource tracker, which lives until every process holding its pipe is gone) used
to run on forever. Each worker therefore watches its parent from a daemon thread and exits when the
parent is gone. Linux's ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the
worker ends, and the pool starts workers from whichever thread submits a job (the evaluation tool's
worker threads), which may end long before the run does.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from lapt.tools.evaluation import Outcome
from lapt.tools.executors.base import Executor, available_cores
from lapt.tools.executors.jobs import Job, run_job

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PARENT_POLL_S = 0.2  # how soon an orphaned worker notices; a getppid() call costs about a microsecond


def _init_worker(threads: int, parent: int) -> None:
    """Runs first in every worker: cap the BLAS/OpenMP threads before numpy or torch load, and start
    watching the parent process ``parent``."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="lapt-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Exit this process once ``parent`` is no longer its parent (it died: the worker was re-parented).

    ``os._exit`` because the parent that would collect a result is gone and the main thread may be in
    the middle of a long evaluation that no clean-up could interrupt.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


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
            initargs=(self.threads_per_trial, os.getpid()),
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
                                   initargs=(self.threads_per_trial, os.getpid()))
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
