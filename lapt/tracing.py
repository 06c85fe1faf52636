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

**Secrets.** Every line is passed through a :class:`Redactor` before it is written: the values of the
API keys this process knows (environment variables named like keys, keys registered with
:func:`register_secret`) and anything shaped like a key (``sk-...``, ``lsv2_...``, bearer tokens,
``"api_key": "..."`` fields) become ``[redacted]``.

This module is the domain side: it knows the file and the LangSmith client, not LangChain or the
graph (the tracer that turns LangChain callbacks into runs is :mod:`lapt.graph.tracing`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import langsmith
import requests
from pydantic import BaseModel
from urllib3.util.retry import Retry

from lapt.errors import UserError

try:
    import orjson as _orjson

    _ORJSON_OPTIONS = _orjson.OPT_NON_STR_KEYS | _orjson.OPT_SERIALIZE_NUMPY
except ImportError:  # langsmith depends on orjson, so this is for unusual installs only
    _orjson = None  # type: ignore[assignment]
    _ORJSON_OPTIONS = 0

TRACE_FILE = "trace.jsonl"
FLUSH_EVERY_S = 0.05  # a killed run loses at most the lines of its last 50 ms
REDACTED = "[redacted]"
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

# -- secrets -------------------------------------------------------------------------------------------
_SHAPED = re.compile(
    r"sk-[A-Za-z0-9_\-]{8,}"  # OpenAI-style keys (sk-..., sk-proj-...)
    r"|lsv2_[A-Za-z0-9_]{8,}"  # LangSmith keys
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"  # Authorization header values
)
_SECRET_FIELD = re.compile(
    r'("(?:[A-Za-z0-9_\-]*api[_\-]?key|authorization|proxy-authorization|cookie|password|secret)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_FIELD_HINTS = ("api", "auth", "cookie", "passw", "secret")  # what every _SECRET_FIELD match contains
_SECRET_ENV = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_SECRET = 8  # shorter values would redact ordinary words
_REGISTERED: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret (e.g. an API key given in code, not in the environment) so no trace shows it."""
    if value and len(value) >= _MIN_SECRET:
        _REGISTERED.add(value)


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables named like credentials (``*_API_KEY``, ``*_TOKEN``, ...)."""
    env = os.environ if environ is None else environ
    return {v for k, v in env.items() if _SECRET_ENV.search(k) and len(v) >= _MIN_SECRET}


class Redactor:
    """Replaces secrets in text: known values (raw and JSON-escaped) and key-shaped strings."""

    def __init__(self, secrets: Iterable[str] = ()):
        values = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        self._forms = sorted(values | {json.dumps(s)[1:-1] for s in values}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, self._forms))) if self._forms else None

    @classmethod
    def from_environment(cls, extra: Iterable[str] = ()) -> Redactor:
        """Everything this process knows to be secret: the environment, registered keys and ``extra``."""
        return cls([*environment_secrets(), *_REGISTERED, *extra])

    def __call__(self, text: str) -> str:
        # Substring tests first: each regex runs only on text that may hold what it looks for, which
        # keeps redaction cheap on the (large, almost always clean) trace lines.
        if self._known is not None and any(form in text for form in self._forms):
            text = self._known.sub(REDACTED, text)
        lower = text.lower()
        if "sk-" in lower or "lsv2_" in lower or "bearer" in lower:
            text = _SHAPED.sub(REDACTED, text)
        if any(hint in lower for hint in _FIELD_HINTS):
            text = _SECRET_FIELD.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
        return text


def redact(text: str) -> str:
    """``text`` without the secrets this process knows about (for error messages and logs)."""
    return Redactor.from_environment()(text)


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


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _str_id(value: Any) -> str | None:
    return None if value is None else str(value)


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
class FileTraceClient(langsmith.Client):
    """A LangSmith client that appends runs to a JSONL file instead of sending them (see module doc).

    It accepts runs from LangChain's tracer and ``@traceable``/``langsmith.trace`` (``create_run`` /
    ``update_run``, as the real client) and from lapt's own tracer (:meth:`post` / :meth:`patch`, the
    same records without the conversions). Writes are synchronous and locked: runs may end on worker
    threads (parallel tool calls). With ``forward`` (a real client, for live tracing to LangSmith) every
    line written is also sent there, redacted exactly as written, with the same ids, by a
    :class:`LiveForwarder` (a daemon thread: a slow or dead endpoint never holds up the run or its exit).

    Args:
        path: the trace file (appended to; created if missing).
        secrets: extra secret values to redact (the environment's and registered keys are always).
        forward: a ``langsmith.Client`` to send the runs to as well (see :func:`live_client`).
        project: the LangSmith project of forwarded runs.
        root_metadata: metadata added to root runs (lapt version, the run's settings).
    """

    def __init__(
        self,
        path: Path,
        *,
        secrets: Iterable[str] = (),
        forward: langsmith.Client | None = None,
        project: str = "lapt",
        root_metadata: Mapping[str, Any] | None = None,
    ):
        # No network: the parent is only built so code that inspects a client finds one; every method
        # that would send something is overridden.
        super().__init__(api_url="http://127.0.0.1:9", api_key="file-only", auto_batch_tracing=False, info={})
        self.path = Path(path)
        self.redact = Redactor.from_environment(secrets)
        self.forward = LiveForwarder(forward, project) if forward is not None else None
        self.project = project
        self.root_metadata = dict(root_metadata or {})
        self._lock = threading.Lock()
        self._start_offset = self.path.stat().st_size if self.path.exists() else 0
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        self._separator = ""
        if self._start_offset:  # a killed session may have left half a line: keep ours off it
            with open(self.path, "rb") as fh:
                fh.seek(self._start_offset - 1)
                self._separator = "" if fh.read(1) == b"\n" else "\n"
            self._fh.write(self._separator)
        # run id -> (its record without inputs, that record as JSON, the inputs as JSON; both redacted)
        self._open: dict[str, tuple[dict[str, Any], str, str]] = {}
        self._lines: dict[str, str | None] = {}  # run id -> its complete line (None until it ends), start order
        self._unwritten_starts: list[str] = []  # runs whose start line was not written yet
        self._pending: list[tuple[str, str, bool]] = []  # (run id, line, is a start line) to write next
        self._flushed = 0.0
        self.closed = False
        self.forward_unfinished = False  # live tracing had not sent everything when finish() gave up

    @property
    def forward_url(self) -> str | None:
        """Where runs are forwarded (live tracing), or None."""
        return None if self.forward is None else str(self.forward.client.api_url)

    # -- lapt's tracer --------------------------------------------------------------------------------
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
            self._write(urgent=record.get("run_type") in _URGENT)

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
        self._fh.write("".join(line for _, line, _ in self._pending))
        self._fh.flush()
        if self.forward is not None:
            self.forward.send(self._pending)
        self._pending = []
        self._flushed = now

    # -- the langsmith.Client interface (LangChainTracer, @traceable, langsmith.trace) ----------------
    def create_run(
        self, name: str, inputs: dict[str, Any], run_type: str, *, project_name: str | None = None, **kwargs: Any
    ) -> None:
        """Record a run start sent the way LangSmith's own tracers send it."""
        record = _from_client_kwargs(kwargs)
        record |= {"name": name, "run_type": run_type, "inputs": inputs}
        record.setdefault("id", str(uuid.uuid4()))
        record.setdefault("start_time", dt.datetime.now(dt.UTC).isoformat())
        self.post(record)

    def update_run(self, run_id: Any, **kwargs: Any) -> None:
        """Record a run end sent the way LangSmith's own tracers send it."""
        fields = _from_client_kwargs(kwargs)
        fields.setdefault("end_time", dt.datetime.now(dt.UTC).isoformat())
        self.patch(str(run_id), fields)

    def flush(self, timeout: float | None = None) -> None:
        """Write what is pending now (lines are otherwise written at least every 50 ms)."""
        with self._lock:
            self._write(urgent=True)

    # -- the end ------------------------------------------------------------------------------------
    def finish(self, forward_timeout_s: float = 5.0) -> dict[str, int]:
        """Compact this session's lines into one per run and finish forwarding; returns counts.

        Returns:
            ``{"runs": ..., "unfinished": ..., "bytes": ...}`` for this session's part of the file.
        """
        with self._lock:
            if self.closed:
                return {"runs": len(self._lines), "unfinished": len(self._open), "bytes": 0}
            self._write(urgent=True)  # the last lines, for the forwarder
            self.closed = True
            self._fh.close()
            lines = []
            for run_id, line in self._lines.items():
                if line is None:  # never ended (an error escaped, or a tracer missed the end)
                    _, head, inputs_json = self._open[run_id]
                    line = _join(head, "", inputs_json)
                lines.append(line)
            body = "".join(lines).encode("utf-8")
            with open(self.path, "rb") as fh:
                prefix = fh.read(self._start_offset) + self._separator.encode()
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_bytes(prefix + body)
            os.replace(tmp, self.path)
        if self.forward is not None and not self.forward.close(forward_timeout_s):
            self.forward_unfinished = True
        return {"runs": len(self._lines), "unfinished": len(self._open), "bytes": len(body)}


class LiveForwarder:
    """Sends the lines a :class:`FileTraceClient` writes to LangSmith, in batches, from a daemon thread.

    A start line goes as a run to create and the complete line of the same run later as its update; a
    run written only complete goes as one create. Sending happens off the run's thread, so a slow
    endpoint costs the run nothing, and the thread is a daemon, so a dead one cannot hold up the exit
    (LangSmith's own background sender can, for ~15 s). :meth:`close` waits a bounded time.
    """

    def __init__(self, client: langsmith.Client, project: str):
        self.client = client
        self.project = project
        self._queue: queue.Queue[tuple[str, str, bool] | None] = queue.Queue()
        self._started: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="lapt-live-trace", daemon=True)
        self._thread.start()

    def send(self, lines: Sequence[tuple[str, str, bool]]) -> None:
        """Queue ``(run id, line, is a start line)`` entries (called with the file lock held: cheap)."""
        for item in lines:
            self._queue.put(item)

    def _loop(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            while len(batch) < 200 and batch[-1] is not None:
                try:
                    batch.append(self._queue.get(timeout=0.2))
                except queue.Empty:
                    break
            done = batch[-1] is None
            create, update = [], []
            for item in batch:
                if item is None:
                    continue
                run_id, line, start = item
                run = {**json.loads(line), "session_name": self.project}
                if not start and run_id in self._started:
                    update.append(run)
                else:
                    create.append(run)
                    if start:
                        self._started.add(run_id)
            if create or update:
                self.client.multipart_ingest(create=create, update=update)  # errors go to its error callback

    def close(self, timeout_s: float) -> bool:
        """Send what is queued, waiting at most ``timeout_s``; True if everything went out."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


_END_FIELDS = frozenset({"end_time", "outputs", "error"})
_URGENT = frozenset({"tool", "llm"})


def _join(head: str, end: str, inputs_json: str) -> str:
    """One line from JSON objects: the run's start fields, its end fields (or ``""``), its inputs."""
    middle = f",{end[1:-1]}" if len(end) > 2 else ""
    return f'{head[:-1]}{middle},"inputs":{inputs_json}}}\n'


def _from_client_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The run-schema fields of ``create_run``/``update_run`` keyword arguments, JSON-ready."""
    out: dict[str, Any] = {}
    for key in RUN_FIELDS:
        value = kwargs.get(key)
        if value is None:
            continue
        if key in ("id", "trace_id", "parent_run_id", "reference_example_id"):
            value = _str_id(value)
        elif key in ("start_time", "end_time"):
            value = _iso(value)
        elif key == "extra" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != "runtime" or kwargs.get("parent_run_id") is None}
        out[key] = value
    return out


def live_tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when the user turned LangSmith tracing on (``LANGSMITH_TRACING=true`` or its old names)."""
    env = os.environ if environ is None else environ
    names = ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING")
    return any(env.get(n, "").strip().lower() == "true" for n in names)


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def langsmith_endpoint(explicit: str | None = None) -> str:
    """The LangSmith API URL: ``explicit``, else ``LANGSMITH_ENDPOINT``, else the hosted service."""
    return (explicit or _env("LANGSMITH_ENDPOINT", "LANGCHAIN_ENDPOINT") or "https://api.smith.langchain.com").rstrip(
        "/"
    )


def langsmith_project(explicit: str | None = None) -> str:
    """The LangSmith project: ``explicit``, else ``LANGSMITH_PROJECT``, else ``lapt``."""
    return explicit or _env("LANGSMITH_PROJECT", "LANGCHAIN_PROJECT") or "lapt"


def live_client(errors: list[str]) -> langsmith.Client | None:
    """A real client for live tracing, configured from the usual environment variables (None: unusable).

    :class:`LiveForwarder` sends through it; failures are collected in ``errors`` (redacted) instead of
    being logged with details, and :meth:`FileTraceClient.finish` bounds the wait.
    A configuration LangSmith refuses (e.g. the hosted service without a key) is reported in ``errors``
    and live tracing is left off: the run and its trace file go on.
    """

    redactor = Redactor.from_environment()

    def on_error(exc: Exception) -> None:
        errors.append(_why_unreachable(exc, None, redactor))

    try:
        return langsmith.Client(
            api_url=langsmith_endpoint(),
            api_key=_env("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"),
            auto_batch_tracing=False,  # lapt's LiveForwarder batches, on a daemon thread
            retry_config=Retry(total=1, backoff_factor=0.5),
            tracing_error_callback=on_error,
            omit_traced_runtime_info=True,
        )
    except langsmith.utils.LangSmithUserError as e:
        errors.append(redact(str(e))[:300])
        return None


_SENDER_THREADS = frozenset({"lapt-live-trace", "lapt-trace-upload"})


class _QuietSendFailures(logging.Filter):
    """Drops langsmith's "Failed to ... ingest runs" log lines from lapt's own sender threads: a page of
    nested reprs with a partly masked key. lapt reports those failures itself, in one line (see
    :func:`live_client`, :func:`upload_runs`); other langsmith users keep their logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName in _SENDER_THREADS and str(record.msg).startswith("Failed to"))


_LANGSMITH_CLIENT_LOG = logging.getLogger("langsmith.client")
_LANGSMITH_CLIENT_LOG.addFilter(_QuietSendFailures())


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


def read_trace(where: str | Path) -> TraceRead:
    """Read and merge a trace file, skipping (and reporting) lines that are not JSON runs.

    Raises:
        UserError: the file is missing, empty, or holds no readable run.
    """
    path = trace_path(where)
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"{path} is empty (the run was stopped before its first step?)")
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
            obj = json.loads(text)
        except json.JSONDecodeError:
            if last and not complete:
                problems.append(f"line {number} is truncated (the run was killed while writing it); skipped")
            else:
                problems.append(f"line {number} is not valid JSON; skipped")
            continue
        if not isinstance(obj, dict) or not obj.get("id"):
            problems.append(f"line {number} is not a run (no id); skipped")
            continue
        run_id = str(obj["id"])
        runs[run_id] = merge_run(runs[run_id], obj) if run_id in runs else obj
    if not runs:
        raise UserError(f"{path} holds no readable run ({'; '.join(problems) or 'no lines'})")
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


# -- uploading -------------------------------------------------------------------------------------
def upload_runs(
    runs: Sequence[Mapping[str, Any]],
    *,
    api_url: str,
    api_key: str | None,
    project: str,
    timeout_s: float,
    chunk: int = 200,
) -> int:
    """Send saved runs to a LangSmith(-compatible) endpoint with the official client; returns the count.

    Ids, trace ids and dotted orders are sent as saved, so the trace reads the same there. The client
    posts to ``/runs/multipart`` (falling back to ``/runs/batch`` where that is missing). The whole
    upload is bounded by ``timeout_s``: the endpoint is probed first (``GET /info``), and the sends run
    on a worker thread that is abandoned at the deadline.

    Raises:
        UserError: the endpoint is unreachable, refuses the key, or the upload fails or takes too long.
    """
    deadline = time.monotonic() + timeout_s
    errors: list[str] = []
    redactor = Redactor.from_environment([api_key] if api_key else [])

    def on_error(exc: Exception) -> None:
        errors.append(_why_unreachable(exc, timeout_s, redactor))

    try:
        client = langsmith.Client(
            api_url=api_url,
            api_key=api_key,
            timeout_ms=max(1, int(timeout_s * 1000)),
            retry_config=Retry(total=0),
            auto_batch_tracing=False,
            omit_traced_runtime_info=True,
            tracing_error_callback=on_error,
        )
        # One bounded request first, so an unreachable endpoint fails fast with a clear message.
        client.request_with_retries("GET", "/info", request_kwargs={"timeout": (timeout_s, timeout_s)})
    except langsmith.utils.LangSmithAuthError as e:
        raise UserError(f"LangSmith at {api_url} refused the API key (set LANGSMITH_API_KEY)") from e
    except langsmith.utils.LangSmithNotFoundError as e:
        raise UserError(f"{api_url} is not a LangSmith API (GET /info: 404)") from e
    except langsmith.utils.LangSmithUserError as e:
        raise UserError(f"cannot upload to {api_url}: {redactor(_first_line(e))}") from e
    except (langsmith.utils.LangSmithError, requests.RequestException) as e:
        raise UserError(f"cannot reach LangSmith at {api_url}: {_why_unreachable(e, timeout_s, redactor)}") from e

    batches = [
        [{**_upload_copy(r), "session_name": project} for r in runs[i : i + chunk]] for i in range(0, len(runs), chunk)
    ]

    def send() -> None:
        for batch in batches:
            client.multipart_ingest(create=batch)  # mutates its input: the dicts are fresh copies

    worker = threading.Thread(target=send, name="lapt-trace-upload", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise UserError(f"upload to {api_url} did not finish within {timeout_s:g} s")
    if errors:
        raise UserError(f"upload to {api_url} failed: {errors[0]}")
    return len(runs)


def _upload_copy(run: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: json.loads(json.dumps(v)) if isinstance(v, (dict, list)) else v for k, v in run.items() if k in RUN_FIELDS
    }


def _why_unreachable(exc: BaseException, timeout_s: float | None, redactor: Redactor) -> str:
    """A short reason for a failed connection (the client's own message is a page of nested reprs)."""
    text = f"{type(exc).__name__}: {exc}"
    if "Timeout" in text or "timed out" in text:
        return "no answer" + (f" within {timeout_s:g} s" if timeout_s is not None else " in time")
    if "refused" in text.lower() or "NewConnectionError" in text:
        return "connection refused"
    if "NameResolution" in text or "getaddrinfo" in text or "Name or service not known" in text:
        return "host not found"
    return redactor(_first_line(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def describe_counts(counts: Mapping[str, int]) -> str:
    """``"712 runs, 0 unfinished, 1.2 MB"`` for logs."""
    return f"{counts['runs']} runs, {counts['unfinished']} unfinished, {counts['bytes'] / 1e6:.2f} MB"
