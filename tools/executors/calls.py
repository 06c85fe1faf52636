"""Evaluations handed to daemon threads: a time limit per evaluation, and a stop that does not wait.

``concurrent.futures`` pools cannot give either. Their threads are joined when the interpreter exits,
so one evaluation that never returns kept a run alive after Ctrl-C (the main thread was interrupted,
then waited for the hung thread forever, a second Ctrl-C included). And a future waited for with a
timeout goes on running. Here each evaluation runs in a daemon thread of its own, at most ``workers``
at once; the waiter enforces the time limit from the moment the evaluation started (not from when it
was queued), and :meth:`DaemonCalls.interrupt` fails every evaluation in flight at once, so every
waiting thread returns and nothing is left that the interpreter would wait for.

A Python thread cannot be stopped from outside: an evaluation past its time limit is abandoned, not
ended. Its thread runs on (on a core) until the evaluation returns, and its place is given to the next
evaluation so the run goes on. The ``processes`` executor ends such an evaluation for real, by killing
its worker process (:mod:`lapt.tools.executors.processes`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError

from lapt.schemas import Status
from lapt.tools.evaluation import Outcome
from lapt.tools.executors.jobs import Job

POLL_S = 0.1
"""How often a waiter whose evaluation has not started yet looks again (it may be interrupted meanwhile)."""


class Interrupted(Exception):
    """The run was interrupted (Ctrl-C): the evaluation was abandoned and its result will never come."""


def timed_out(timeout_s: float, what: str) -> Outcome:
    """The failed outcome of an evaluation still running after ``timeout_s`` (``what`` became of it)."""
    return Outcome(
        status=Status.FAILED,
        error=f"timed out: the evaluation was still running after --eval-timeout {timeout_s:g} s ({what})",
        cost_s=timeout_s,
        extras={"timed_out": True},
    )


def settle(future: Future[Outcome], outcome: Outcome | BaseException) -> None:
    """Give ``future`` its result (or error) unless it has one already (a timeout or an interruption came first)."""
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        pass


class Call:
    """One evaluation handed to a thread: its future, and when it started running."""

    def __init__(self, job: Job):
        self.job = job
        self.future: Future[Outcome] = Future()
        self.started = threading.Event()
        self.started_at = 0.0
        self.finished = threading.Event()  # the evaluation itself returned (not only its future)
        self.abandoned = False  # timed out: its thread may run on, nobody waits for it
        self.holds_slot = False


class DaemonCalls:
    """Runs ``fn(job)`` in daemon threads, at most ``workers`` at once, each within ``timeout_s``.

    Args:
        workers: evaluations running at once.
        fn: what runs a job (raises when the job is lost).
        timeout_s: the time limit of one evaluation, from its start; None for none.
    """

    def __init__(self, workers: int, fn: Callable[[Job], Outcome], timeout_s: float | None = None):
        self.fn = fn
        self.timeout_s = timeout_s
        self._slots = threading.Semaphore(workers)
        self._lock = threading.RLock()  # re-entrant: interrupt() runs in a signal handler
        self._calls: set[Call] = set()
        self.stopped = False

    def submit(self, job: Job) -> Call:
        """Start ``job`` in a thread of its own (it waits there for a free place)."""
        call = Call(job)
        with self._lock:
            if self.stopped:
                raise Interrupted("the run was interrupted")
            self._calls.add(call)
        threading.Thread(target=self._run, args=(call,), name="lapt-eval", daemon=True).start()
        return call

    def _run(self, call: Call) -> None:
        self._slots.acquire()
        with self._lock:
            call.holds_slot = True
            go = not self.stopped and not call.future.done()
            if go:
                call.started_at = time.monotonic()
                call.started.set()
        try:
            if go:
                try:
                    settle(call.future, self.fn(call.job))
                except BaseException as exc:  # handed to the waiter, who decides what it becomes
                    settle(call.future, exc)
        finally:
            call.finished.set()
            self._free(call)
            with self._lock:
                self._calls.discard(call)

    def _free(self, call: Call) -> None:
        with self._lock:
            if call.holds_slot:
                call.holds_slot = False
                self._slots.release()

    def wait(self, call: Call) -> Outcome:
        """The outcome of ``call``: its result, a timed-out failure, or :class:`Interrupted`."""
        if self.timeout_s is None:
            return call.future.result()
        while not call.started.wait(POLL_S):
            if call.future.done():  # interrupted before it could start
                return call.future.result()
        left = self.timeout_s - (time.monotonic() - call.started_at)
        try:
            return call.future.result(timeout=max(0.0, left))
        except TimeoutError:
            outcome = timed_out(self.timeout_s, "its thread cannot be stopped and runs on until it returns")
            call.abandoned = True
            settle(call.future, outcome)
            self._free(call)  # the next evaluation takes its place
            return call.future.result()

    def interrupt(self) -> None:
        """Fail every evaluation in flight at once and refuse new ones (their threads are left to die)."""
        with self._lock:
            self.stopped = True
            calls = list(self._calls)
        for call in calls:
            settle(call.future, Interrupted("the run was interrupted"))

    def close(self) -> None:
        """Wait for the evaluations still running (not abandoned ones, and none once interrupted)."""
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            if self.stopped:
                return
            if not call.abandoned:
                call.finished.wait()
