"""In-process executors: ``local`` (one evaluation at a time, the default) and ``threads``.

Both stop at once on Ctrl-C and can hold each evaluation to a time limit (``--eval-timeout``); see
:mod:`lapt.tools.executors.calls` for how, and for why a timed-out evaluation's thread runs on.
"""

from __future__ import annotations

import threading
from typing import Any

from lapt.tools.evaluation import Outcome
from lapt.tools.executors.base import Executor, available_cores
from lapt.tools.executors.calls import Call, DaemonCalls
from lapt.tools.executors.jobs import Job, run_job


class LocalExecutor(Executor):
    """Evaluates in the calling process, one job at a time even when called from several threads.

    One at a time because an in-process training evaluator already uses every core; two trainings in
    threads of one process would fight over them. Without a time limit, an evaluation asked for by the
    main thread runs in that thread itself (Ctrl-C interrupts it where it is, and a table lookup costs
    less than starting a thread); otherwise it runs in a daemon thread that the caller waits for, so
    that Ctrl-C or the time limit never waits for it.
    """

    name = "local"

    def __init__(self, timeout_s: float | None = None) -> None:
        self.workers = 1
        self.threads_per_trial = available_cores()
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        # With a time limit no lock: an abandoned evaluation would hold it forever (the semaphore of one
        # place is given back instead).
        self._calls = DaemonCalls(1, run_job if timeout_s is not None else self._run_locked, timeout_s)

    def _run_locked(self, job: Job) -> Outcome:
        with self._lock:
            return run_job(job)

    def _start(self, job: Job) -> Any:
        if self.timeout_s is None and threading.current_thread() is threading.main_thread():
            return job  # deferred: runs in _wait, in this thread
        return self._calls.submit(job)

    def _wait(self, handle: Any) -> Outcome:
        if isinstance(handle, Call):
            return self._calls.wait(handle)
        return self._run_locked(handle)

    def interrupt(self) -> None:
        super().interrupt()
        self._calls.interrupt()

    def close(self) -> None:
        self._calls.close()


class ThreadExecutor(Executor):
    """Evaluates in threads of this process: for evaluators that release the GIL or wait on something
    else (torch kernels, a remote service). ``workers x threads_per_trial <= cores``."""

    name = "threads"

    def __init__(self, workers: int, timeout_s: float | None = None) -> None:
        self.workers = workers
        self.threads_per_trial = max(1, available_cores() // workers)
        self.timeout_s = timeout_s
        self._calls = DaemonCalls(workers, run_job, timeout_s)

    def _start(self, job: Job) -> Call:
        return self._calls.submit(job)

    def _wait(self, handle: Call) -> Outcome:
        return self._calls.wait(handle)

    def interrupt(self) -> None:
        super().interrupt()
        self._calls.interrupt()

    def close(self) -> None:
        self._calls.close()
