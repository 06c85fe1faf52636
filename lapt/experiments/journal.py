"""A bench's journal: the bench directory claimed for one process, and every run's result kept as it ends.

A bench is hundreds of runs. Writing nothing until the last one ends meant that a bench killed at run 36
of 300 left nothing, and that two benches given the same ``--out`` both ran and the second to finish
replaced the first one's files. So the bench directory works like a run directory:

* ``.lock``: held for the bench's life (:class:`lapt.runs.lock.RunLock`): a second bench on the same
  folder is refused before it reads or writes anything there;
* ``bench.json``: the configuration and the hash of the code that runs it, written (atomically) before
  the first run starts;
* ``journal.jsonl``: one line per finished run (method, pair, seed and its whole result), appended
  whole and ``fsync``-ed before the next result is taken, so a kill loses at most the runs in flight.

``lapt bench`` with the same arguments on the same ``--out`` reads the journal back and runs only what
is missing. Every run depends on nothing but its (method, pair, seed), so the data files of a continued
bench are those of an uninterrupted one. A bench continued with other settings or other code is
refused, since its results would mix two benches. A line torn by a kill (the last one, without its
newline) is dropped; any other damage is refused, not repaired.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lapt.errors import UserError
from lapt.experiments.files import BENCH, JOURNAL
from lapt.experiments.methods import JobResult
from lapt.experiments.plan import BenchConfig, Job, MethodName, parse_config
from lapt.files.inputs import read_input_text
from lapt.runs.directory import atomic_write

MAX_JOURNAL_BYTES = 1024 * 1024 * 1024
"""A run's line is a few KB (its curve holds one number per evaluation); a GB is far beyond any bench."""

JobKey = tuple[str, str, int]


def job_key(job: Job) -> JobKey:
    """(method, pair label, seed): what names a run in the journal."""
    return (job.method, job.pair.label, job.seed)


class BenchHeader(BaseModel):
    """``bench.json``: what the journal's results were computed with."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    config: dict[str, Any]
    code_sha256: str = Field(description="sha256 of the package source that ran the bench (lapt.runs.identity)")


class JournalEntry(BaseModel):
    """One line of ``journal.jsonl``: one finished run."""

    model_config = ConfigDict(extra="forbid")

    method: MethodName
    pair: str
    seed: int
    row: dict[str, Any]
    curve: list[float | None]
    mask_counts: list[list[int]] | None = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BenchJournal:
    """The journal of the bench in ``out`` (the caller holds the folder's lock).

    Attributes:
        done: results already in the journal, by :func:`job_key`.
        continued: whether the folder already held this bench (the call continues it).
    """

    def __init__(self, out: Path, config: BenchConfig, code_sha256: str):
        self.out = out
        self.done: dict[JobKey, JobResult] = {}
        self.continued = False
        self._fh: IO[str] | None = None
        header = BenchHeader(config=config.model_dump(mode="json"), code_sha256=code_sha256)
        if (out / BENCH).exists():
            self._check_same(self._read_header(), header)
            self.continued = True
            self._read_entries(config)
        else:
            (out / JOURNAL).write_text("")  # the folder is ours (locked): an empty journal, then the header
            atomic_write(out / BENCH, json.dumps(header.model_dump(mode="json"), indent=1, sort_keys=True) + "\n")
            _fsync_dir(out)

    # -- reading back ---------------------------------------------------------------------------------
    def _read_header(self) -> BenchHeader:
        path = self.out / BENCH
        try:
            return BenchHeader.model_validate(json.loads(read_input_text(path, "bench file", 64 * 1024 * 1024)))
        except (json.JSONDecodeError, ValidationError) as e:
            raise UserError(f"{path} is not a bench header lapt wrote; nothing was changed: use a new --out") from e

    def _check_same(self, stored: BenchHeader, new: BenchHeader) -> None:
        where = f"--out {self.out} holds an unfinished bench"
        if stored.code_sha256 != new.code_sha256:
            raise UserError(f"{where} run by other lapt code: continuing it would mix two benches; use a new --out")
        if stored.config != new.config:
            keys = sorted(k for k in {*stored.config, *new.config} if stored.config.get(k) != new.config.get(k))
            raise UserError(
                f"{where} with other settings (differs in: {', '.join(keys)}); repeat its arguments to continue it, "
                "or use a new --out"
            )
        parse_config(stored.config, str(self.out / BENCH))

    def _read_entries(self, config: BenchConfig) -> None:
        from lapt.experiments.plan import plan_jobs

        path = self.out / JOURNAL
        planned = {job_key(j) for j in plan_jobs(config)}
        text = read_input_text(path, "bench journal", MAX_JOURNAL_BYTES) if path.exists() else ""
        lines = text.split("\n")
        kept = 0
        for number, line in enumerate(lines[:-1], 1):  # the piece after the last newline is empty or torn
            try:
                entry = JournalEntry.model_validate(json.loads(line))
            except (ValueError, ValidationError) as e:  # ValueError: not JSON at all
                raise UserError(f"{path}:{number}: damaged journal line; nothing was changed: use a new --out") from e
            key = (entry.method, entry.pair, entry.seed)
            if key not in planned or key in self.done:
                what = "a second result for" if key in self.done else "a result outside the bench for"
                raise UserError(f"{path}:{number}: {what} ({entry.method}, {entry.pair}, seed {entry.seed})")
            self.done[key] = JobResult(row=entry.row, curve=entry.curve, mask_counts=entry.mask_counts)
            kept += len(line) + 1
        if lines[-1]:  # a line cut short by the kill: drop it, its run is run again
            with open(path, "r+b") as fh:
                fh.truncate(len(text[:kept].encode("utf-8")))
                os.fsync(fh.fileno())

    # -- writing ----------------------------------------------------------------------------------------
    def record(self, job: Job, result: JobResult) -> None:
        """Append ``result`` as one line and wait until it is on disk."""
        entry = JournalEntry(
            method=job.method, pair=job.pair.label, seed=job.seed, row=result.row, curve=result.curve,
            mask_counts=result.mask_counts,
        )
        if self._fh is None:
            self._fh = open(self.out / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        # The standard library's JSON writes floats by repr: read back, they are the same numbers.
        self._fh.write(json.dumps(entry.model_dump(), allow_nan=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done[job_key(job)] = result

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
