"""Retrying the SQLite operations whose "database is locked" the busy handler does not wait out.

Several processes share lapt's SQLite files (the LLM response cache of a bench's workers, the
principle library, an evaluation cache). SQLite's busy timeout covers ordinary lock waits, but a few
operations fail at once with "database is locked": switching a fresh file to WAL while another process
opens it, or a lock upgrade inside a read transaction. Those are retried here with a short backoff up
to the same timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

BUSY_TIMEOUT_S = 30.0


def retry_locked(fn: Callable[[], _T], timeout_s: float = BUSY_TIMEOUT_S) -> _T:
    """Call ``fn``, retrying while SQLite reports a lock its busy handler did not wait out."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            locked = "locked" in str(e) or "busy" in str(e)
            if not locked or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def enable_wal(conn: sqlite3.Connection, timeout_s: float = BUSY_TIMEOUT_S) -> None:
    """Put ``conn``'s database in WAL mode (readers never block the writer), retrying a racing open."""
    retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(), timeout_s)
