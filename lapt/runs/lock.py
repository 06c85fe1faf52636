"""One process per run directory: an exclusive ``fcntl.flock`` on ``<run_dir>/.lock``.

Two processes writing the same run directory (two resumes of one killed run, or a run started twice
into the same folder) would interleave trials and checkpoints. The lock is taken before anything in the
folder is read for a decision or written, and held for the life of the run; the kernel drops it when
the process ends, however it ends (SIGKILL included), so a killed run never leaves a stale lock. The
file holds the owner's pid, only to name it in the refusal.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO

from lapt.errors import UserError

LOCK_NAME = ".lock"


class RunLock:
    """Exclusive, non-blocking lock on a run directory (created if missing).

    Args:
        run_dir: the folder.
        what: how refusals name it (a bench directory is ``--out DIR``).
    """

    def __init__(self, run_dir: Path, what: str = "run directory"):
        self.run_dir = run_dir
        self.what = what
        self._fh: IO[str] | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / LOCK_NAME

    def acquire(self) -> RunLock:
        """Take the lock or refuse with a UserError naming the process that holds it."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+")  # noqa: SIM115 - held open for the life of the run
        except OSError as e:
            raise UserError(f"cannot use {self.what} {self.run_dir}: {e.strerror or e}") from e
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            fh.seek(0)
            owner = fh.read().strip() or "unknown"
            fh.close()
            raise UserError(
                f"{self.what} {self.run_dir} is in use by another lapt process (pid {owner}); "
                "wait for it to end"
            ) from e
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Drop the lock (closing the file releases it)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
