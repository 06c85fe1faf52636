"""Durable runs: the graph checkpointed to SQLite after every superstep, and resumed after a kill.

A run with a run directory is compiled with LangGraph's ``SqliteSaver`` on ``<run_dir>/checkpoints.sqlite``
and invoked with ``durability="sync"``: the checkpoint of each superstep (each evaluation batch, each
agent decision) is committed before the next step starts, so even SIGKILL loses at most the step that
was in flight. One run per folder, so the thread id is fixed and a resume needs nothing but the folder.

Resuming a run:

1. lock the folder (:mod:`lapt.run_lock`) and refuse other code, settings or prompts
   (:mod:`lapt.run_identity`), before anything is written;
2. read the last checkpoint and make the files agree with it: the killed step may have written a trial,
   a decision, a principles or a mask version that the checkpoint does not hold, and the checkpoint is
   the truth;
3. continue the graph from the checkpoint. The step that was in flight runs again; its evaluations are
   answered by the run's evaluation cache (:mod:`lapt.tools.eval_cache`), so none is paid for twice.

The strategy state (its RNG included) is graph state, so with the offline reasoner and tabular
evaluation a resumed run ends with the same trials as an uninterrupted one (``tests/test_resume.py``).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite import SqliteSaver

from lapt.errors import UserError
from lapt.graph.build import build_graph
from lapt.run_dir import RunDirectory, atomic_write
from lapt.run_identity import check_same_run, config_fingerprint
from lapt.run_lock import RunLock
from lapt.tools.eval_cache import CachingEvaluator, EvalCache
from lapt.tools.evaluation import Evaluator

THREAD_ID = "run"
CHECKPOINTS = "checkpoints.sqlite"
EVAL_CACHE = "eval_cache.sqlite"
PRUNE_EVERY = 16  # checkpoints between two prunings of the older ones

Status = Literal["new", "resumed", "finished"]


class PruningSqliteSaver(SqliteSaver):
    """``SqliteSaver`` that deletes checkpoints older than the latest every ``prune_every`` saves.

    Every checkpoint holds the whole state (all trials, masks, principles), so keeping them all grows
    the file quadratically (34 MB for a budget-100 NB201 run); a resume needs only the latest one and
    its pending writes. Not safe with ``DeltaChannel`` state (which needs the history): set
    ``prune_every = 0`` then (:class:`DurableRun` does).
    """

    def __init__(self, conn: sqlite3.Connection, prune_every: int | None = None):
        super().__init__(conn)
        self.prune_every = PRUNE_EVERY if prune_every is None else prune_every
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


def open_saver(path: Path) -> PruningSqliteSaver:
    """The checkpointer of a run directory (usable from LangGraph's worker threads).

    WAL journal with ``synchronous=NORMAL``: a committed checkpoint survives the process being killed
    (SIGKILL included: the data is in the OS's hands); only an OS crash or power loss can drop the
    last few, never corrupt the file. ``FULL`` would add an fsync per superstep (about 2x the run time
    of a tabular run here) for that case alone.
    """
    saver = PruningSqliteSaver(sqlite3.connect(path, check_same_thread=False))
    saver.setup()
    saver.conn.execute("PRAGMA synchronous=NORMAL")
    return saver


def thread_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``config`` with the run's fixed thread id."""
    config = dict(config or {})
    config["configurable"] = {**config.get("configurable", {}), "thread_id": THREAD_ID}
    return config


class DurableRun:
    """The graph of one run, with its lock, checkpointer and evaluation cache; a context manager.

    Without a run directory it is the plain graph (nothing to lock, checkpoint or cache). ``resume``
    continues the run the folder holds (after checking it is the same run), or starts one if it holds
    none; without ``resume`` a folder holding a run is refused. ``checkpoint=False`` runs without
    checkpoints or cache (such a run cannot be resumed; used to measure what durability costs).

    Attributes:
        status: "new", "resumed" (continuing a checkpoint) or "finished" (the checkpoint is the end).
        trials_done: evaluations already in the checkpoint.
        graph: the compiled graph.
    """

    def __init__(
        self, writer: RunDirectory | None, config: dict[str, Any], *, resume: bool = False, checkpoint: bool = True
    ):
        self.writer = writer
        self.config = config
        self.resume = resume
        self.checkpoint = checkpoint
        self.status: Status = "new"
        self.trials_done = 0
        self.graph: Any = None
        self.saver: PruningSqliteSaver | None = None
        self.cache: EvalCache | None = None
        self._lock: RunLock | None = None
        self._values: dict[str, Any] = {}

    # -- opening ---------------------------------------------------------------------------------
    def __enter__(self) -> DurableRun:
        if self.writer is None:
            self.graph = build_graph()
            return self
        self._lock = RunLock(self.writer.path).acquire()
        try:
            self._open(self.writer)
        except BaseException:
            self.close()
            raise
        return self

    def _open(self, w: RunDirectory) -> None:
        if self.resume and w.holds_run():
            stored = w.read_config()
            check_same_run(stored, self.config, w.path)
            if not (w.path / CHECKPOINTS).is_file():
                raise UserError(f"cannot resume {w.path}: it has no {CHECKPOINTS} (it ran without checkpoints)")
            self.saver = open_saver(w.path / CHECKPOINTS)
            if self.saver.read_meta("config_sha256") != config_fingerprint(stored):
                raise UserError(f"cannot resume {w.path}: config.json was changed after the run started")
            self.status = "resumed"
        else:
            w.check_new()
            for name in (CHECKPOINTS, EVAL_CACHE):  # left by a run killed before it wrote config.json
                for leftover in (name, f"{name}-wal", f"{name}-shm"):
                    (w.path / leftover).unlink(missing_ok=True)
            if self.checkpoint:
                self.saver = open_saver(w.path / CHECKPOINTS)
                self.saver.write_meta("config_sha256", config_fingerprint(self.config))
            w.create(self.config)  # config.json last: from here on the folder holds a run
        if self.saver is not None:
            self.cache = EvalCache(w.path / EVAL_CACHE)
        self.graph = build_graph(self.saver)
        if self.saver is not None and any(isinstance(c, DeltaChannel) for c in self.graph.channels.values()):
            self.saver.prune_every = 0
        if self.status == "resumed":
            self._load_checkpoint(w)

    def _load_checkpoint(self, w: RunDirectory) -> None:
        snapshot = self.graph.get_state(thread_config())
        if snapshot.created_at is None:  # killed before the first checkpoint: start over
            self.status = "new"
            return
        self._values = dict(snapshot.values)
        if not snapshot.next and self._values.get("done"):
            self.status = "finished"
        self.trials_done = len(self._values.get("trials", []))
        sync_files(w, self._values)

    # -- running ---------------------------------------------------------------------------------
    def evaluator(self, evaluator: Evaluator) -> Evaluator:
        """``evaluator`` behind the run's evaluation cache (unchanged for runs without one)."""
        return evaluator if self.cache is None else CachingEvaluator(evaluator, self.cache)

    def invoke(self, context: Any, initial: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
        """Run the graph to the end: from ``initial``, or on from the checkpoint when resuming."""
        if self.status == "finished":
            return self._values
        if self.saver is None:
            state: dict[str, Any] = self.graph.invoke(initial, config=config, context=context)
            return state
        start = None if self.status == "resumed" else initial
        state = self.graph.invoke(start, config=thread_config(config), context=context, durability="sync")
        return state

    def finish(self, state: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        """Make the run directory equal to the final state and write the summary; returns the summary.

        A run that had already finished keeps the summary it wrote then (its wall time is the real one).
        Closes the run (releasing the lock) once the files are written.
        """
        w = self.writer
        try:
            if w is None:
                return summary
            summary_path = w.path / "summary.json"
            if self.status == "finished" and summary_path.is_file():
                stored: dict[str, Any] = json.loads(summary_path.read_text())
                return stored
            sync_files(w, state)  # cheap when the events already wrote everything (files are compared first)
            w.write_summary(summary)
            return summary
        finally:
            self.close()

    def stats(self) -> dict[str, int]:
        """The evaluation cache's counters (empty without a cache)."""
        return self.cache.stats() if self.cache is not None else {}

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        if self.saver is not None:
            self.saver.conn.close()
            self.saver = None
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def sync_files(w: RunDirectory, values: dict[str, Any]) -> None:
    """Make trials.jsonl, decisions.jsonl, principles/ and masks/ hold exactly what the graph state
    ``values`` holds; files that already do are left untouched."""
    trials = list(values.get("trials", []))
    if _read_jsonl(w.path / "trials.jsonl") != trials:
        w.sync_trials(trials)
    decisions = list(values.get("decisions", []))
    if _read_jsonl(w.path / "decisions.jsonl") != decisions:
        atomic_write(w.path / "decisions.jsonl", "".join(json.dumps(d, sort_keys=True) + "\n" for d in decisions))
    for folder, records, write in (
        ("principles", values.get("principles") or [], w.write_principles),
        ("masks", values.get("masks") or [], w.write_mask),
    ):
        keep = {f"v{r['version']}.json" for r in records}
        for record in records:
            path = w.path / folder / f"v{record['version']}.json"
            if _read_json(path) != record:
                write(record)
        for path in (w.path / folder).glob("v*.json"):
            if path.name not in keep:
                path.unlink()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _read_jsonl(path: Path) -> list[Any] | None:
    """The JSON lines of ``path`` (None if it is missing or a line is torn, as a kill can leave it)."""
    try:
        return [json.loads(line) for line in path.read_text().splitlines()]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def open_durable(
    ctx: Any, writer: RunDirectory | None, config: dict[str, Any], *, resume: bool = False, checkpoint: bool = True
) -> DurableRun:
    """Open the durable run of ``ctx`` and put the evaluation cache in front of ``ctx.evaluator``.

    On a refusal (folder in use, holds another run, other code...) the context's executor is closed
    before the error goes up: nothing else was started.
    """
    durable = DurableRun(writer, config, resume=resume, checkpoint=checkpoint)
    try:
        durable.__enter__()
    except BaseException:
        close = getattr(ctx.executor, "close", None)
        if close is not None:
            close()
        raise
    ctx.evaluator = durable.evaluator(ctx.evaluator)
    return durable
