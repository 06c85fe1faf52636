"""Decision traces in the LangSmith run format: write them to a file, read them back, upload them.

A run directory's ``trace.jsonl`` holds one JSON object per line, each a run in the LangSmith run schema
(``id``, ``trace_id``, ``dotted_order``, ``parent_run_id``, ``run_type``, ``name``, ``inputs``,
``outputs``, ``error``, ``start_time``, ``end_time``, ``tags``, ``extra.metadata``).

**File protocol.** While a run is going, the file is appended to: every run that ends is written whole
(one line, with ``end_time`` and ``outputs`` or ``error``), and a run that is still going after 50 ms,
or any evaluation (tool run) or LLM call as it starts, gets a line without them first. Writes are
synchronous (no background thread) and happen at least every 50 ms and at the start of every
evaluation and LLM call, so a killed process loses at most its last 50 ms of lines and never the
record that an evaluation or call had started. When the traced code finishes,
:meth:`FileTraceClient.finish` rewrites this session's lines so the file holds exactly one line per
run, in start order (older sessions' lines, e.g. before a resume, are kept as they are). A reader
therefore merges lines by ``id``, later fields winning (:func:`read_trace`): this gives the same result
for a finished file and for the file of a killed run, where runs that never ended have no
``end_time`` and a truncated last line is reported and skipped.

**Whole lines.** A write is whole lines or nothing: one the disk refuses half-way is cut back off
and its lines are written again later. A kill can still tear the last line; the next session on the
file (a resume) drops that torn tail before it appends.

**Secrets.** Every line is passed through the one redactor (:mod:`lapt.llm.redaction`) before it is written.

This module knows the file and nothing of LangSmith, LangChain or the graph: the LangSmith client that
feeds it, live tracing and uploads are in :mod:`lapt.graph.trace_client`, the tracer that turns
LangChain callbacks into runs in :mod:`lapt.graph.tracing`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from lapt.errors import UserError
from lapt.files.inputs import MB, read_input
from lapt.llm.redaction import Redactor

try:
    import orjson as _orjson

    _ORJSON_OPTIONS = _orjson.OPT_NON_STR_KEYS | _orjson.OPT_SERIALIZE_NUMPY
except ImportError:  # langsmith depends on orjson, so this is for unusual installs only
    _orjson = None  # type: ignore[assignment]
    _ORJSON_OPTIONS = 0

TRACE_FILE = "trace.jsonl"
FLUSH_EVERY_S = 0.05  # a killed run loses at most the lines of its last 50 ms
MAX_TRACE_BYTES = 1024 * MB  # read whole into memory: a budget-100 LLM run writes a few MB
RUN_FIELDS = (
    "id",
    "trace_id",
    "dotted_order",
    "parent_run_id",
    "run_type",
    "name",
    "inputs",
    "outputs",
    "error",
    "start_time",
    "end_time",
    "tags",
    "extra",
    "reference_example_id",
)


# -- JSON ------------------------------------------------------------------------------------------
def _default(o: Any) -> Any:
    """JSON for what ``json`` cannot encode: models, dataclasses, times, ids, arrays; else ``str``."""
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json", exclude_none=True, fallback=str)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
    if isinstance(o, (dt.datetime, dt.date)):
        return o.isoformat()
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=str)
    if isinstance(o, bytes):
        return f"<{len(o)} bytes>"
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return o.tolist()
    return str(o)


def _jsonable(o: Any) -> Any:
    """A copy of ``o`` with string keys, for the rare object ``json.dumps`` rejects as it is."""
    if isinstance(o, Mapping):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    return o


def dumps(obj: Any) -> str:
    """Compact JSON for a trace line (never raises for odd values: they become strings).

    orjson (a dependency of langsmith) is about five times faster than ``json`` here, which matters at
    two lines per run; ``json`` takes what orjson refuses (integers beyond 64 bits, lone surrogates).
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(obj, default=_default, option=_ORJSON_OPTIONS).decode()
        except TypeError:
            pass
    try:
        return json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # non-string keys or a reference cycle
        return json.dumps(_jsonable(obj), default=_default, separators=(",", ":"), ensure_ascii=False)


def _merge_extra(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = dict(old or {})
    for key, value in (new or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def merge_run(old: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``old`` updated with the non-null fields of ``new`` (``extra`` and its metadata merged)."""
    out = dict(old)
    for key, value in new.items():
        if value is None:
            continue
        out[key] = _merge_extra(old.get(key), value) if key == "extra" else value
    return out


# -- the writer ------------------------------------------------------------------------------------
class TraceWriter:
    """Appends runs to a JSONL trace file (see the module docstring for the protocol).

    Runs come from the graph's tracer and from ``langsmith`` run trees (through the LangSmith client in
    :mod:`lapt.graph.trace_client`) as plain records: :meth:`post` when a run starts, :meth:`patch`
    when it ends. Writes are synchronous and locked: runs may end on worker threads (parallel tool
    calls). Every line is redacted once, as it is made.

    Args:
        path: the trace file (appended to; created if missing).
        secrets: extra secret values to redact (the environment's and registered keys are always).
        forward: called with every batch of written ``(run id, line, is a start line)`` entries, with
            the writer's lock held (live tracing queues them for a sender thread).
        root_metadata: metadata added to root runs (lapt version, the run's settings).
    """

    def __init__(
        self,
        path: Path,
        *,
        secrets: Iterable[str] = (),
        forward: Callable[[Sequence[tuple[str, str, bool]]], None] | None = None,
        root_metadata: Mapping[str, Any] | None = None,
    ):
        self.path = Path(path)
        self.redact = Redactor.from_environment(secrets)
        self.forward = forward
        self.root_metadata = dict(root_metadata or {})
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)  # closed in finish()
        # A killed session (or a failed write) may have left half a line: it is not a run, drop it.
        size = os.fstat(self._fd).st_size
        self._start_offset = _end_of_last_line(self.path, size)
        self.dropped_tail = size - self._start_offset  # bytes of a torn last line removed
        if self.dropped_tail:
            os.ftruncate(self._fd, self._start_offset)
        self._size = self._start_offset
        # run id -> (its record without inputs, that record as JSON, the inputs as JSON; both redacted)
        self._open: dict[str, tuple[dict[str, Any], str, str]] = {}
        self._lines: dict[str, str | None] = {}  # run id -> its complete line (None until it ends), start order
        self._unwritten_starts: list[str] = []  # runs whose start line was not written yet
        self._pending: list[tuple[str, str, bool]] = []  # (run id, line, is a start line) to write next
        self._flushed = 0.0
        self._long_runs: dict[str, float] = {}  # run id -> start, for evaluations and LLM calls
        self._slow_tools = True  # until an evaluation is seen to end within the flush interval
        self.closed = False

    # -- runs --------------------------------------------------------------------------------
    def post(self, record: dict[str, Any], inputs: Any = None) -> None:
        """A run started: ``record`` holds its ids, name, type, start time, tags and extra; ``inputs`` its
        inputs (or ``record["inputs"]``)."""
        run_id = str(record["id"])
        rest = record
        if "inputs" in record:
            rest = {k: v for k, v in record.items() if k != "inputs"}
            inputs = record["inputs"] if inputs is None else inputs
        if rest.get("parent_run_id") is None and self.root_metadata:
            rest = {**rest, "extra": _merge_extra(rest.get("extra"), {"metadata": self.root_metadata})}
        # Each part is redacted once, as it is made: no secret pattern spans two parts of a line.
        head, inputs_json = self.redact(dumps(rest)), self.redact(dumps(inputs or {}))
        with self._lock:
            self._open[run_id] = (rest, head, inputs_json)
            self._lines[run_id] = None  # keeps start order for the final file
            self._unwritten_starts.append(run_id)
            # An evaluation or an LLM call may take minutes: its start (and all before it) goes out now.
            # Evaluations that end within the flush interval (table lookups) are written with the rest.
            run_type = record.get("run_type")
            if run_type in _URGENT:
                self._long_runs[run_id] = time.monotonic()
            self._write(urgent=run_type == "llm" or (run_type == "tool" and self._slow_tools))

    def patch(self, run_id: str, fields: Mapping[str, Any]) -> None:
        """A run ended: ``fields`` holds ``end_time`` and ``outputs`` or ``error`` (and extra to merge)."""
        run_id = str(run_id)
        with self._lock:
            rest, head, inputs_json = self._open.pop(run_id, ({"id": run_id}, "", ""))
        update = {k: v for k, v in fields.items() if k != "inputs" and v is not None}
        if fields.get("inputs") and not inputs_json:
            inputs_json = self.redact(dumps(fields["inputs"]))
        if head and update.keys() <= _END_FIELDS:
            # The common case: reuse the start's JSON and append the end fields (no key repeats).
            line = _join(head, self.redact(dumps(update)), inputs_json)
        else:
            line = _join(self.redact(dumps(merge_run(rest, update))), "", inputs_json or "{}")
        with self._lock:
            started = self._long_runs.pop(run_id, None)
            if started is not None and rest.get("run_type") == "tool":
                self._slow_tools = time.monotonic() - started >= FLUSH_EVERY_S
            self._lines[run_id] = line
            self._pending.append((run_id, line, False))
            self._write()

    def _write(self, urgent: bool = False) -> None:
        """Write what is pending if ``urgent`` or 50 ms passed since the last write (lock held).

        A start line is written only if its run is still going by then: a run that ends sooner is
        written once, complete, which halves the writing for the many short runs.
        """
        now = time.monotonic()
        if self.closed or not (urgent or now - self._flushed >= FLUSH_EVERY_S):
            return
        for run_id in self._unwritten_starts:
            if run_id in self._open:
                _, head, inputs_json = self._open[run_id]
                self._pending.append((run_id, _join(head, "", inputs_json), True))
        self._unwritten_starts.clear()
        self._append("".join(line for _, line, _ in self._pending))
        if self.forward is not None:
            self.forward(self._pending)
        self._pending = []
        self._flushed = now

    def _append(self, text: str) -> None:
        """Append whole lines, or nothing: a write the disk refuses half-way is cut back off (lock held).

        The lines stay pending when it fails, so they are written whole by a later write (or by
        :meth:`finish`) once there is room again. ``backslashreplace`` keeps a lone surrogate in a
        string as the JSON escape it stands for.
        """
        data = text.encode("utf-8", errors="backslashreplace")
        start = self._size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        self._size = start + len(data)

    def flush(self, timeout: float | None = None) -> None:
        """Write what is pending now (lines are otherwise written at least every 50 ms)."""
        with self._lock:
            self._write(urgent=True)

    # -- the end ------------------------------------------------------------------------------------
    def finish(self) -> dict[str, int]:
        """Compact this session's lines into one per run; returns counts.

        Returns:
            ``{"runs": ..., "unfinished": ..., "bytes": ...}`` for this session's part of the file.
        """
        with self._lock:
            if self.closed:
                return {"runs": len(self._lines), "unfinished": len(self._open), "bytes": 0}
            try:
                self._write(urgent=True)  # the last lines, for the forwarder (if any)
            finally:
                self.closed = True
                os.close(self._fd)
            lines = []
            for run_id, line in self._lines.items():
                if line is None:  # never ended (an error escaped, or a tracer missed the end)
                    _, head, inputs_json = self._open[run_id]
                    line = _join(head, "", inputs_json)
                lines.append(line)
            body = "".join(lines).encode("utf-8", errors="backslashreplace")
            with open(self.path, "rb") as fh:
                prefix = fh.read(self._start_offset)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            try:
                tmp.write_bytes(prefix + body)
                os.replace(tmp, self.path)
            except OSError:  # the appended file stays as it is: whole lines, readable by merging
                tmp.unlink(missing_ok=True)
                raise
        return {"runs": len(self._lines), "unfinished": len(self._open), "bytes": len(body)}


def _end_of_last_line(path: Path, size: int, chunk: int = 1 << 16) -> int:
    """The offset just after the last newline of the first ``size`` bytes of ``path`` (0 if none)."""
    with open(path, "rb") as fh:
        end = size
        while end > 0:
            start = max(0, end - chunk)
            fh.seek(start)
            block = fh.read(end - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


_END_FIELDS = frozenset({"end_time", "outputs", "error"})
_URGENT = frozenset({"tool", "llm"})


def _join(head: str, end: str, inputs_json: str) -> str:
    """One line from JSON objects: the run's start fields, its end fields (or ``""``), its inputs."""
    middle = f",{end[1:-1]}" if len(end) > 2 else ""
    return f'{head[:-1]}{middle},"inputs":{inputs_json}}}\n'


# -- reading ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class TraceRead:
    """A trace file read back: merged runs in first-seen order, and what was wrong with the file."""

    path: Path
    runs: list[dict[str, Any]]
    problems: list[str]

    @property
    def unfinished(self) -> list[dict[str, Any]]:
        """Runs that started but never ended (the process was killed, or is still running)."""
        return [r for r in self.runs if not r.get("end_time")]


def trace_path(where: str | Path) -> Path:
    """The trace file of a run directory (or the file itself); UserError if there is none."""
    p = Path(where)
    if not p.exists():
        raise UserError(f"{p} does not exist")
    if p.is_dir():
        p = p / TRACE_FILE
        if not p.exists():
            raise UserError(f"{p.parent} holds no {TRACE_FILE} (was the run made with --no-trace?)")
    return p


_OBJECT_FIELDS = ("inputs", "outputs", "extra")
_TEXT_FIELDS = ("name", "run_type", "trace_id", "parent_run_id", "dotted_order", "error")
_TIME_FIELDS = ("start_time", "end_time")
MAX_PROBLEMS_SHOWN = 3
"""Problems quoted in the error for a file with no readable run (a binary file has one per line)."""


def run_line_problem(obj: Any) -> str | None:
    """Why a parsed trace line is not a run the readers can use, or None when it is one.

    The viewer and the uploader read these fields by name; a line with ``start_time: "yesterday"`` or a
    string for ``outputs`` is reported and skipped here rather than crashing them later.
    """
    if not isinstance(obj, dict) or not obj.get("id") or not isinstance(obj["id"], str | int):
        return "is not a run (no id)"
    for key in _OBJECT_FIELDS:
        if obj.get(key) is not None and not isinstance(obj[key], dict):
            return f"is not a run: its {key} is a {type(obj[key]).__name__}, not an object"
    for key in _TEXT_FIELDS:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            return f"is not a run: its {key} is a {type(obj[key]).__name__}, not a string"
    for key in _TIME_FIELDS:
        if obj.get(key) is not None and not _is_iso_time(obj[key]):
            return f"is not a run: its {key} is not an ISO 8601 time"
    return None


def _is_iso_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def read_trace(where: str | Path) -> TraceRead:
    """Read and merge a trace file, skipping (and reporting) lines that are not JSON runs.

    Raises:
        UserError: the file is missing, empty, binary, or holds no readable run.
    """
    from lapt.files.json_input import JSONTooDeep, load_json

    path = trace_path(where)
    raw = read_input(path, "trace", MAX_TRACE_BYTES)
    if not raw.strip():
        raise UserError(f"{path} is empty (the run was stopped before its first step?)")
    if b"\x00" in raw:
        raise UserError(f"{path} holds binary data: not a trace (a JSON-lines file written by lapt run)")
    lines = raw.decode("utf-8", errors="replace").split("\n")
    complete = raw.endswith(b"\n")
    if complete:
        lines = lines[:-1]
    runs: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        last = number == len(lines)
        try:
            obj = load_json(text)
        except JSONTooDeep as e:
            problems.append(f"line {number} is {e}; skipped")
            continue
        except json.JSONDecodeError:
            if last and not complete:
                problems.append(f"line {number} is truncated (the run was killed while writing it); skipped")
            else:
                problems.append(f"line {number} is not valid JSON; skipped")
            continue
        problem = run_line_problem(obj)
        if problem is not None:
            problems.append(f"line {number} {problem}; skipped")
            continue
        run_id = str(obj["id"])
        runs[run_id] = merge_run(runs[run_id], obj) if run_id in runs else obj
    if not runs:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN]) or "no lines"
        more = f"; and {len(problems) - MAX_PROBLEMS_SHOWN:,} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise UserError(f"{path} holds no readable run ({shown}{more})")
    return TraceRead(path=path, runs=list(runs.values()), problems=problems)


def tree_problems(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """What keeps ``runs`` from forming one tree per trace (empty when they do).

    Checks: one root per ``trace_id`` (the root's id is the trace id), every ``parent_run_id`` present,
    every child in its parent's trace with a ``dotted_order`` that extends its parent's.
    """
    by_id = {str(r["id"]): r for r in runs}
    out: list[str] = []
    roots: dict[str, list[str]] = {}
    for r in runs:
        rid, parent = str(r["id"]), r.get("parent_run_id")
        order = str(r.get("dotted_order") or "")
        if not order.endswith(rid):
            out.append(f"run {rid} ({r.get('name')}): dotted_order does not end with its id")
        if parent is None:
            roots.setdefault(str(r.get("trace_id")), []).append(rid)
            if str(r.get("trace_id")) != rid:
                out.append(f"root run {rid} ({r.get('name')}): trace_id is not its own id")
            continue
        up = by_id.get(str(parent))
        if up is None:
            out.append(f"run {rid} ({r.get('name')}): parent {parent} is missing")
            continue
        if r.get("trace_id") != up.get("trace_id"):
            out.append(f"run {rid} ({r.get('name')}): trace_id differs from its parent's")
        if not order.startswith(str(up.get("dotted_order")) + "."):
            out.append(f"run {rid} ({r.get('name')}): dotted_order does not extend its parent's")
    for trace_id, ids in roots.items():
        if len(ids) > 1:
            out.append(f"trace {trace_id} has {len(ids)} roots")
    traces = {str(r.get("trace_id")) for r in runs}
    out += [f"trace {t} has no root" for t in sorted(traces - set(roots))]
    return out


def describe_counts(counts: Mapping[str, int]) -> str:
    """``"712 runs, 0 unfinished, 1.2 MB"`` for logs."""
    return f"{counts['runs']} runs, {counts['unfinished']} unfinished, {counts['bytes'] / 1e6:.2f} MB"
