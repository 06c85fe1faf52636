"""Durable runs: the graph checkpointed to SQLite after every superstep, and resumed after a kill.

A run with a run directory is compiled with LangGraph's ``SqliteSaver`` on ``<run_dir>/checkpoints.sqlite``
and checkpointed after every superstep (each evaluation batch, each agent decision). The commits are
asynchronous (``durability="async"``): the next step does not wait for SQLite, so SIGKILL can lose the
checkpoints of the last few steps. Nothing that cost anything is lost with them: every evaluation and
every LLM answer is committed to its cache as it happens, so the steps that run again on resume pay for
nothing twice. One run per folder, so the thread id is fixed and a resume needs nothing but the folder.

A checkpoint is the graph state (:mod:`lapt.graph.state`): constant in size, so the run's cost per
evaluation does not grow with its length; a resume needs only the latest one, so older ones are pruned.
The steps after the last committed checkpoint run again on resume; their evaluations are answered by
the run's evaluation cache (:mod:`lapt.tools.eval_cache`) and their LLM calls by the response cache. The
run's record files are brought in line with the checkpoint by the recorder
(:meth:`lapt.graph.recorder.RunRecorder.resume`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite import SqliteSaver

from lapt.errors import UserError

THREAD_ID = "run"
CHECKPOINTS = "checkpoints.sqlite"
EVAL_CACHE = "eval_cache.sqlite"
LLM_CACHE = "llm_cache.sqlite"
PRUNE_EVERY = 16  # checkpoints between two prunings of the older ones
WAL_LIMIT_BYTES = 1 << 20  # the write-ahead log is cut back to this after each SQLite checkpoint


class PruningSqliteSaver(SqliteSaver):
    """``SqliteSaver`` that deletes checkpoints older than the latest every ``prune_every`` saves.

    A resume needs only the latest checkpoint and its pending writes; keeping them all would grow the
    file with every step of the run.
    """

    def __init__(self, conn: sqlite3.Connection, prune_every: int = PRUNE_EVERY):
        super().__init__(conn)
        self.prune_every = prune_every
        self._saved = 0

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        saved = super().put(config, checkpoint, metadata, new_versions)
        self._saved += 1
        if self.prune_every and self._saved % self.prune_every == 0:
            self.keep_latest(saved)
        return saved

    def keep_latest(self, saved: RunnableConfig) -> None:
        """Delete the checkpoints (and their writes) of this thread older than ``saved``."""
        c = saved["configurable"]
        key = (c["thread_id"], c.get("checkpoint_ns", ""), c["checkpoint_id"])
        with self.cursor() as cur:
            cur.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ?", key)
            cur.execute("DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ?", key)

    def read_meta(self, key: str) -> str | None:
        """A value of the ``lapt_run`` table (what this database belongs to)."""
        with self.cursor(transaction=False) as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS lapt_run (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = cur.execute("SELECT value FROM lapt_run WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def write_meta(self, key: str, value: str) -> None:
        with self.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS lapt_run (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            cur.execute("INSERT OR REPLACE INTO lapt_run (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self.conn.close()


def open_saver(path: Path) -> PruningSqliteSaver:
    """The checkpointer of a run directory (usable from LangGraph's worker threads).

    WAL journal with ``synchronous=NORMAL``: a committed checkpoint survives the process being killed
    (SIGKILL included: the data is in the OS's hands); only an OS crash or power loss can drop the
    last few, never corrupt the file. ``FULL`` would add an fsync per superstep for that case alone.
    A file that is not a checkpoint database (damaged, truncated, something else) is refused in one line.
    """
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        problem = conn.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(problem)
        saver = PruningSqliteSaver(conn)
        saver.setup()
    except sqlite3.DatabaseError as e:
        conn.close()
        raise UserError(f"{path} is damaged ({e}): this run cannot be resumed; start a new run") from e
    return saver


def thread_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``config`` with the run's fixed thread id."""
    config = dict(config or {})
    config["configurable"] = {**config.get("configurable", {}), "thread_id": THREAD_ID}
    return config
