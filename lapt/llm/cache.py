"""A response cache for LLM calls, keyed by the exact request, stored in SQLite.

Why: LLM calls are the slow and paid part of a run. Keying each answer by the sha256 of the whole
request (model, base URL without its password, request options, structured-output method, every
message, the schema) makes repeated runs and benches free, makes a replay deterministic (the same
request always gets the answer it got first), and lets a resumed run skip every call it already paid
for. Everything an agent shows the model is in its messages, so a request that differs in any fact
(say, the regions a stalled search has already tried) is a different key and never replays an answer
given to other facts. Only answers the server actually gave are stored (valid or not, since replaying
an invalid answer replays its repair too); failed calls are not.

The database uses WAL journaling and a busy timeout, and every write is one short transaction with
``INSERT OR IGNORE``, so several processes (parallel runs of a bench) can share one file: the first
answer stored for a key wins and later writers keep it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lapt.files.sqlite_locks import enable_wal, retry_locked

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    answer TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class CachedAnswer(BaseModel):
    """What the model answered to one request, as it crosses the disk boundary."""

    model_config = ConfigDict(extra="forbid")

    raw: str | dict[str, Any] = Field(description="The answer text, or the tool call's arguments.")
    method: str = Field(description="The structured-output method that produced it.")
    model: str = ""
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    truncated: bool = Field(default=False, description="The server cut the answer at its length limit.")
    reasoning: str | None = Field(default=None, description="The server's separate reasoning field, if any.")


def request_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``request`` (sorted keys, no whitespace, UTF-8)."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """Answers by request key in one SQLite file; the file is created on first use.

    Args:
        path: the database file (its folder is created when the first answer is stored or read).
        timeout_s: how long a writer waits for another process's lock before failing.
    """

    def __init__(self, path: str | Path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            enable_wal(conn, self.timeout_s)  # workers of a bench open the same file at once
            conn.execute("PRAGMA synchronous = NORMAL")
            retry_locked(lambda: conn.execute(_SCHEMA), self.timeout_s)
            self._conn = conn
        return self._conn

    def get(self, key: str) -> CachedAnswer | None:
        """The stored answer for ``key``, or None (also when the file does not exist yet)."""
        if self._conn is None and not self.path.exists():
            return None
        with self._lock:
            row = self._connect().execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return None if row is None else CachedAnswer.model_validate_json(row[0])

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store ``answer`` under ``key`` unless an answer is already stored there."""
        with self._lock:
            self._connect().execute(
                "INSERT OR IGNORE INTO answers (key, model, method, answer, created) VALUES (?, ?, ?, ?, ?)",
                (key, answer.model, answer.method, answer.model_dump_json(), time.time()),
            )

    def __len__(self) -> int:
        if self._conn is None and not self.path.exists():
            return 0
        with self._lock:
            (n,) = self._connect().execute("SELECT COUNT(*) FROM answers").fetchone()
        return int(n)

    def close(self) -> None:
        """Close the connection (it reopens on the next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
