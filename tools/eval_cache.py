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

from lapt.spaces import Genotype, SearchSpace
from lapt.tools.evaluation import Evaluator, Outcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY,
    space TEXT NOT NULL,
    arch TEXT NOT NULL,
    task TEXT NOT NULL,
    settings TEXT NOT NULL,
    outcome TEXT NOT NULL,
    computed INTEGER NOT NULL DEFAULT 1,
    hits INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
)
"""


def cache_key(space: str, arch: str, task: str, settings: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines an evaluation's result."""
    blob = json.dumps([space, arch, task, settings], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class EvalCache:
    """One SQLite file of evaluation outcomes; safe to share between the threads of one run."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # survives SIGKILL; see lapt.graph.durable.open_saver
        self._conn.execute(_SCHEMA)

    def get(self, key: str) -> Outcome | None:
        """The stored outcome for ``key`` (counting a hit), or None."""
        with self._lock:
            row = self._conn.execute("SELECT outcome FROM evaluations WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            self._conn.execute("UPDATE evaluations SET hits = hits + 1 WHERE key = ?", (key,))
        return Outcome.model_validate_json(row[0])

    def put(self, key: str, space: str, arch: str, task: str, settings: dict[str, Any], outcome: Outcome) -> None:
        """Store a fresh outcome; storing a key again counts a repeated evaluation."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO evaluations (key, space, arch, task, settings, outcome, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET computed = computed + 1, outcome = excluded.outcome",
                (key, space, arch, task, json.dumps(settings, sort_keys=True), outcome.model_dump_json(), time.time()),
            )

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
