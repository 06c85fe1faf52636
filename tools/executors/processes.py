"""The ``processes`` executor: spawned worker processes on this machine, one evaluation in each at a time.

Spawned, not forked: a fork of a process holding LangGraph threads, a tqdm bar or torch state is
unsafe. Each worker limits its threads so that ``workers x threads_per_trial <= cores``, and builds each
evaluator once (tables load once per worker process).

Each worker is a pool of one process (a *slot*), driven by a daemon thread per evaluation
(:mod:`lapt.tools.executors.calls`), so that one worker can be ended without touching the others:

* a worker that dies breaks only its own slot: the slot gets a fresh process, and the job is retried
  once like any lost job (a job that kills its worker every time fails alone);
* an evaluation past ``--eval-timeout`` (counted from its start in the worker) has its worker killed:
  the trial fails with that reason and the slot gets a fresh process;
* Ctrl-C (:meth:`ProcessExecutor.interrupt`) kills every worker at once, so neither the run nor the
  interpreter's exit waits for an evaluation that never returns. Workers ignore SIGINT themselves:
  the Ctrl-C a terminal sends to the whole process group is the parent's to act on.

Workers die with the run. A run killed with SIGKILL runs no clean-up, and its workers (and with them
multiprocessing's resource tracker, which lives until every process holding its pipe is gone) used
to run on forever. Each worker therefore watches its parent from a daemon thread and exits when the
parent is gone. Linux's ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the
worker ends, and workers are started from whichever thread submits a job (the evaluation tool's
worker threads), which may end long before the run does.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from lapt.tools.evaluation import Outcome
from lapt.tools.executors.base import Executor, available_cores
from lapt.tools.executors.calls import Call, Interrupted, settle, timed_out
from lapt.tools.executors.jobs import Job, run_job

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
PARENT_POLL_S = 0.2  # how soon an orphaned worker notices; a getppid() call costs about a microsecond


def _init_worker(threads: int, parent: int) -> None:
    """Runs first in every worker: cap the BLAS/OpenMP threads before numpy or torch load, leave Ctrl-C
    to the parent, and start watching the parent process ``parent``."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="lapt-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Exit this process once ``parent`` is no longer its parent (it died: the worker was re-parented).

    ``os._exit`` because the parent that would collect a result is gone and the main thread may be in
    the middle of a long evaluation that no clean-up could interrupt.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


class _Slot:
    """One worker process (a pool of one), used by one evaluation at a time."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.pid: int | None = None

    def kill(self) -> None:
        """End the worker now (SIGKILL: an evaluation stuck in C code ignores anything gentler)."""
        pid, pool = self.pid, self.pool
        self.pid = self.pool = None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):  # it died on its own already
                os.kill(pid, signal.SIGKILL)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class ProcessExecutor(Executor):
    """Evaluates in ``workers`` spawned processes, each running one evaluation at a time."""

    name = "processes"

    def __init__(self, workers: int, timeout_s: float | None = None) -> None:
        self.workers = workers
        self.threads_per_trial = max(1, available_cores() // workers)
        self.timeout_s = timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.RLock()  # re-entrant: interrupt() runs in a signal handler
        self._slots = [_Slot() for _ in range(workers)]
        self._free: queue.Queue[_Slot] = queue.Queue()
        for slot in self._slots:
            self._free.put(slot)
        self._calls: set[Call] = set()
        self._closed = False

    def _start(self, job: Job) -> Call:
        call = Call(job)
        with self._lock:
            if self._closed or self.interrupted:
                raise Interrupted("the run was interrupted") if self.interrupted else RuntimeError(
                    "the process executor is closed"
                )
            self._calls.add(call)
        threading.Thread(target=self._drive, args=(call,), name="lapt-eval", daemon=True).start()
        return call

    def _wait(self, handle: Call) -> Outcome:
        return handle.future.result()

    # -- the thread that runs one evaluation in a slot ---------------------------------------------------
    def _drive(self, call: Call) -> None:
        slot = self._free.get()
        try:
            if self.interrupted:
                settle(call.future, Interrupted("the run was interrupted"))
                return
            try:
                pool = self._ready(slot)
                future = pool.submit(run_job, call.job)
            except Exception as exc:  # failure-is-data boundary: a job that cannot start is lost
                slot.kill()
                settle(call.future, exc)
                return
            try:
                settle(call.future, future.result(timeout=self.timeout_s))
            except TimeoutError:
                slot.kill()
                settle(call.future, timed_out(self.timeout_s or 0.0, "its worker process was stopped"))
            except BrokenProcessPool as exc:  # the worker died (or was killed by interrupt): a fresh one next
                slot.kill()
                settle(call.future, exc)
            except BaseException as exc:  # what the evaluator raised: the job is lost
                settle(call.future, exc)
        finally:
            call.finished.set()
            with self._lock:
                self._calls.discard(call)
            self._free.put(slot)

    def _ready(self, slot: _Slot) -> ProcessPoolExecutor:
        """The slot's pool, with its worker started (its start-up is not part of any evaluation's time)."""
        if slot.pool is None:
            pool = ProcessPoolExecutor(
                max_workers=1, mp_context=self._context, initializer=_init_worker,
                initargs=(self.threads_per_trial, os.getpid()),
            )
            slot.pool = pool
            slot.pid = pool.submit(os.getpid).result()
            if self.interrupted:  # interrupted while the worker started: interrupt() could not see its pid
                slot.kill()
                raise Interrupted("the run was interrupted")
        return slot.pool

    # -- stopping -------------------------------------------------------------------------------------------
    def interrupt(self) -> None:
        super().interrupt()
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            settle(call.future, Interrupted("the run was interrupted"))
        for slot in self._slots:
            slot.kill()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            calls = list(self._calls)
        if not self.interrupted:
            for call in calls:
                call.finished.wait()
        for slot in self._slots:
            if self.interrupted:
                slot.kill()
            elif slot.pool is not None:
                slot.pool.shutdown(wait=True, cancel_futures=True)
                slot.pool = None
