"""The evaluation cache of a run: every finished evaluation, in SQLite, so none is paid for twice.

A run killed between an evaluation and the checkpoint that records it re-runs that graph step when it
is resumed. With the cache the evaluator is not called again: the stored outcome comes back and the
trial is recorded with status ``cached`` (same metrics; ``cost_s`` is what this run paid, the lookup).

The key is the sha256 of the space name, the canonical architecture string, the task and the
evaluator's :meth:`~lapt.tools.evaluation.Evaluator.settings` (table name, epochs, seed...), so a change
of evaluator settings never reuses a stale result. Failed outcomes are cached too: within one run an
architecture is proposed once, so replaying its failure is what makes a resumed run equal to an
uninterrupted one.

Each write is one committed transaction (WAL journal, ``synchronous=NORMAL``), so a process killed right
after an evaluation keeps it. Two counters per entry measure what the cache saved: ``computed`` (evaluator calls that
produced this key: more than 1 means an evaluation was repeated) and ``hits``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lapt.errors import UserError
from lapt.files.sqlite_locks import enable_wal
from lapt.spaces import Genotype, SearchSpace
from lapt.tools.evaluation import Evaluator, Outcome

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS evaluators (
    id INTEGER PRIMARY KEY,
    space TEXT NOT NULL,
    task TEXT NOT NULL,
    settings TEXT NOT NULL,
    UNIQUE (space, task, settings)
)
""",
    """
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY,
    evaluator INTEGER NOT NULL REFERENCES evaluators (id),
    arch TEXT NOT NULL,
    outcome TEXT NOT NULL,
    computed INTEGER NOT NULL DEFAULT 1,
    hits INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
) WITHOUT ROWID
""",
)


def _damaged(e: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is bad (as opposed to locked, read-only or out of space)."""
    text = str(e).lower()
    return "malformed" in text or "not a database" in text or "corrupt" in text


def _outcome_json(outcome: Outcome) -> str:
    """An outcome as stored: without its empty fields (one row per evaluation of a long run), its wall time
    to four significant digits as the trial records it (the digits beyond are noise; a hit reports its own
    lookup time anyway)."""
    return outcome.model_copy(update={"cost_s": float(f"{outcome.cost_s:.4g}")}).model_dump_json(exclude_defaults=True)


def cache_key(space: str, arch: str, task: str, settings: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines an evaluation's result."""
    blob = json.dumps([space, arch, task, settings], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


_COLUMNS = ("key", "evaluator", "arch", "outcome", "computed", "hits", "created")


class CorruptEvalCache(UserError):
    """The evaluation cache file is not a readable cache: refused before anything is added to it."""


class EvalCache:
    """One SQLite file of evaluation outcomes; safe to share between the threads of one run.

    Opening checks the file (SQLite's ``quick_check`` and the table's columns) and refuses a damaged
    one with :class:`CorruptEvalCache`, before a resume adds anything to the run: a cache that answered
    wrongly would make the resumed run differ from the uninterrupted one without a trace.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._evaluators: dict[str, int] = {}  # (space, task, settings) as JSON -> its row id
        try:
            self._conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as e:
            raise self._corrupt(e) from e
        try:
            self._check()
            enable_wal(self._conn)
            self._conn.execute("PRAGMA synchronous=NORMAL")  # survives SIGKILL; see lapt.graph.durable.open_saver
            for statement in _SCHEMA:
                self._conn.execute(statement)
        except sqlite3.DatabaseError as e:
            self._conn.close()
            if isinstance(e, sqlite3.OperationalError) and not _damaged(e):
                raise  # locked, read-only, disk full: the environment, not the file
            raise self._corrupt(e) from e
        except CorruptEvalCache:
            self._conn.close()
            raise

    def _check(self) -> None:
        """Raise CorruptEvalCache (or sqlite3.DatabaseError) unless the file is an intact cache (or empty)."""
        problems = [row[0] for row in self._conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise self._corrupt(problems[0])
        columns = tuple(row[1] for row in self._conn.execute("PRAGMA table_info(evaluations)").fetchall())
        if columns and columns != _COLUMNS:
            raise self._corrupt(f"its evaluations table has the columns {', '.join(columns)}")

    def _corrupt(self, why: object) -> CorruptEvalCache:
        return CorruptEvalCache(
            f"evaluation cache {self.path} is damaged ({why}); nothing was changed. Move it away to go on "
            "without it (evaluations it held would be paid for again)"
        )

    def get(self, key: str) -> Outcome | None:
        """The stored outcome for ``key`` (counting a hit), or None."""
        with self._lock:
            try:
                row = self._conn.execute("SELECT outcome FROM evaluations WHERE key = ?", (key,)).fetchone()
            except sqlite3.DatabaseError as e:
                if isinstance(e, sqlite3.OperationalError) and not _damaged(e):
                    raise
                raise self._corrupt(e) from e
            if row is None:
                return None
            try:
                outcome = Outcome.model_validate_json(row[0])
            except ValidationError as e:
                raise self._corrupt(f"the outcome stored for {key[:12]} is unreadable") from e
            self._conn.execute("UPDATE evaluations SET hits = hits + 1 WHERE key = ?", (key,))
        return outcome

    def put(self, key: str, space: str, arch: str, task: str, settings: dict[str, Any], outcome: Outcome) -> None:
        """Store a fresh outcome; storing a key again counts a repeated evaluation.

        The space, task and evaluator settings are stored once (``evaluators``), not on every row: a run
        has one of each, and a long run stores thousands of outcomes.
        """
        with self._lock:
            evaluator = self._evaluator(space, task, json.dumps(settings, sort_keys=True))
            self._conn.execute(
                "INSERT INTO evaluations (key, evaluator, arch, outcome, created) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET computed = computed + 1, outcome = excluded.outcome",
                (key, evaluator, arch, _outcome_json(outcome), time.time()),
            )

    def _evaluator(self, space: str, task: str, settings: str) -> int:
        """The row id of (space, task, settings), added on first use (lock held)."""
        name = json.dumps([space, task, settings])
        if name not in self._evaluators:
            self._conn.execute(
                "INSERT OR IGNORE INTO evaluators (space, task, settings) VALUES (?, ?, ?)", (space, task, settings)
            )
            (rid,) = self._conn.execute(
                "SELECT id FROM evaluators WHERE space = ? AND task = ? AND settings = ?", (space, task, settings)
            ).fetchone()
            self._evaluators[name] = int(rid)
        return self._evaluators[name]

    def stats(self) -> dict[str, int]:
        """``entries``, ``computed`` (evaluator calls), ``repeated`` (calls beyond the first per key), ``hits``."""
        with self._lock:
            n, computed, hits = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(computed), 0), COALESCE(SUM(hits), 0) FROM evaluations"
            ).fetchone()
        return {"entries": n, "computed": computed, "repeated": computed - n, "hits": hits}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachingEvaluator:
    """An :class:`~lapt.tools.evaluation.Evaluator` that answers from the cache before paying ``inner``.

    A hit comes back with ``status="cached"`` (or ``"failed"`` for a cached failure), which
    :func:`~lapt.tools.evaluation.evaluate_trial` records as such.
    """

    def __init__(self, inner: Evaluator, cache: EvalCache):
        self.inner = inner
        self.cache = cache
        self.name = inner.name

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()

    def evaluate(self, space: SearchSpace, genotype: Genotype, task: str) -> Outcome:
        start = time.perf_counter()
        arch = space.to_str(genotype)
        settings = self.inner.settings()
        key = cache_key(space.name, arch, task, settings)
        hit = self.cache.get(key)
        if hit is not None:
            status = "cached" if hit.status == "ok" else hit.status
            return hit.model_copy(update={"status": status, "cost_s": time.perf_counter() - start})
        outcome = self.inner.evaluate(space, genotype, task)
        self.cache.put(key, space.name, arch, task, settings, outcome)
        return outcome

    def __getattr__(self, name: str) -> Any:
        # Anything else an evaluator offers (close(), executors...) is the inner evaluator's.
        return getattr(self.inner, name)
