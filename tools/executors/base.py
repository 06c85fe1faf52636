"""The executor contract: a batch of jobs in, one Outcome per job out, in order; lost work retried once.

A job is *lost* when running it raised instead of returning an Outcome: the evaluator raised, the
worker process died (``BrokenProcessPool``), a Ray worker crashed. Lost jobs are retried once, in a
fresh worker where the executor has such a thing; a job lost twice becomes a failed Outcome carrying
both errors. Outcomes an evaluator returns with ``status="failed"`` (a NaN loss) are results, not
losses, and are never retried: the same settings would fail the same way; nor is an evaluation that
ran past the time limit (``--eval-timeout``), which fails with that reason.

An interrupted executor (:meth:`Executor.interrupt`, which :func:`stop_on_sigint` calls on Ctrl-C)
abandons every evaluation in flight at once and retries none: the run stops, it does not wait.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, ClassVar

from lapt.schemas import Status
from lapt.tools.evaluation import Outcome
from lapt.tools.executors.calls import Interrupted
from lapt.tools.executors.jobs import Job


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line, short enough for a trial record.

    A wrapper that carries the worker's exception as ``cause`` (Ray's ``RayTaskError``) is described
    by that exception, since the wrapper's own first line only says where the task ran.
    """
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return f"{type(exc).__name__.partition('(')[0]}: {describe(cause)}"[:300]
    text = _ANSI.sub("", str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def lost_outcome(first: BaseException, second: BaseException) -> Outcome:
    """The failed outcome of a job lost on both attempts."""
    return Outcome(
        status=Status.FAILED,
        error=f"lost twice: {describe(first)}; retry: {describe(second)}",
        extras={"attempts": 2, "lost": True},
    )


class Executor(abc.ABC):
    """Runs evaluation jobs; subclasses say how to start one and how to wait for it.

    ``run`` and ``map`` are safe to call from several threads at once (the evaluation ToolNode runs the
    tool calls of a batch in a thread pool, each tool call submitting its own job).

    Attributes:
        name: the ``--executor`` value.
        workers: evaluations that may run at once.
        threads_per_trial: CPU threads one evaluation may use (torch threads for training).
        timeout_s: the time limit of one evaluation (None: none).
    """

    name: ClassVar[str]
    workers: int
    threads_per_trial: int
    timeout_s: float | None = None
    interrupted: bool = False

    @abc.abstractmethod
    def _start(self, job: Job) -> Any:
        """Start ``job``; return a handle for :meth:`_wait` (may raise: the job is then lost)."""

    @abc.abstractmethod
    def _wait(self, handle: Any) -> Outcome:
        """The outcome of a started job (raises if the job was lost)."""

    def _start_retry(self, job: Job) -> Any:
        """Start the second attempt at a lost job (default: the same way as the first)."""
        return self._start(job)

    def map(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Outcomes of ``jobs`` in order; all are started before any is waited for, and so are the retries."""
        handles: list[tuple[bool, Any]] = []
        for job in jobs:
            try:
                handles.append((True, self._start(job)))
            except Exception as exc:  # failure-is-data boundary: a job that cannot start is lost, not fatal
                handles.append((False, exc))
        firsts: list[Outcome | BaseException] = []
        for started, handle in handles:
            if not started:
                firsts.append(handle)
                continue
            try:
                firsts.append(self._wait(handle))
            except Exception as exc:  # failure-is-data boundary: a lost job is retried, then recorded
                firsts.append(exc)
        if self.interrupted:  # the run is stopping: nothing is retried, nothing is recorded
            raise Interrupted("the run was interrupted")
        retries: dict[int, tuple[bool, Any]] = {}
        for i, (job, first) in enumerate(zip(jobs, firsts, strict=True)):
            if not isinstance(first, Outcome):
                try:
                    retries[i] = (True, self._start_retry(job))
                except Exception as exc:  # failure-is-data boundary: lost twice is a failed trial
                    retries[i] = (False, exc)
        out: list[Outcome] = []
        for i, first in enumerate(firsts):
            if isinstance(first, Outcome):
                out.append(first)
                continue
            started, handle = retries[i]
            if not started:
                out.append(lost_outcome(first, handle))
                continue
            try:
                again = self._wait(handle)
            except Exception as exc:  # failure-is-data boundary: lost twice is a failed trial
                out.append(lost_outcome(first, exc))
                continue
            out.append(again.model_copy(update={"extras": {**again.extras, "attempts": 2, "retried": describe(first)}}))
        return out

    def run(self, job: Job) -> Outcome:
        """The outcome of one job (blocking)."""
        return self.map([job])[0]

    def interrupt(self) -> None:
        """Stop now (Ctrl-C): abandon the evaluations in flight, refuse new ones, wait for nothing.

        Safe to call from a signal handler: it only sets flags, fails futures and kills worker processes.
        """
        self.interrupted = True

    def close(self) -> None:
        """Release workers (idempotent)."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def stop_on_sigint(executor: Executor) -> Iterator[None]:
    """While the block runs, Ctrl-C (SIGINT) interrupts ``executor`` before it raises KeyboardInterrupt.

    Without this, Ctrl-C raised KeyboardInterrupt in the main thread only; the threads and worker
    processes evaluating (a hung evaluation among them) were then waited for, by the evaluation node's
    thread pool and by the executor's clean-up, for ever. Nothing is installed outside the main thread
    (only it may set handlers), nor where SIGINT is ignored or left to the system's default.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        executor.interrupt()
        previous(signum, frame)  # Python's own handler: raises KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
