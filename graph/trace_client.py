"""LangSmith on the graph side: the client that feeds the trace file, live tracing, uploads.

:class:`FileTraceClient` is a ``langsmith.Client`` that sends nothing: runs from LangChain's tracers and
from ``langsmith`` run trees (``@traceable``, ``langsmith.trace``) go to a
:class:`~lapt.runs.trace_file.TraceWriter` instead. With live tracing (``LANGSMITH_TRACING=true``) every line
written is also sent, redacted exactly as written and with the same ids, to LangSmith or any server
speaking its API, by a :class:`LiveForwarder` on a daemon thread. :func:`upload_runs` sends a saved
trace later (``lapt trace upload``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import langsmith
import requests
from urllib3.util.retry import Retry

from lapt.errors import UserError
from lapt.files.json_input import load_json
from lapt.llm.redaction import Redactor, redact
from lapt.runs.trace_file import RUN_FIELDS, TraceWriter


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _str_id(value: Any) -> str | None:
    return None if value is None else str(value)


class FileTraceClient(langsmith.Client):
    """A LangSmith client that writes runs to a trace file (and, with ``forward``, to LangSmith too).

    Args:
        path: the trace file.
        secrets: extra secret values to redact.
        forward: a ``langsmith.Client`` to send the runs to as well (see :func:`live_client`).
        project: the LangSmith project of forwarded runs.
        root_metadata: metadata added to root runs.
    """

    def __init__(
        self,
        path: Path,
        *,
        secrets: Sequence[str] = (),
        forward: langsmith.Client | None = None,
        project: str = "lapt",
        root_metadata: Mapping[str, Any] | None = None,
    ):
        # No network: the parent is only built so code that inspects a client finds one; every method
        # that would send something is overridden.
        super().__init__(api_url="http://127.0.0.1:9", api_key="file-only", auto_batch_tracing=False, info={})
        path = Path(path)
        self.earlier_unsent = 0  # runs an earlier (killed) session wrote but never got to the endpoint
        self.forwarder: LiveForwarder | None = None
        if forward is not None:
            sent_log = path.with_suffix(SENT_LOG_SUFFIX)
            self.earlier_unsent = _never_sent(path, sent_log)
            self.forwarder = LiveForwarder(forward, project, sent_log=sent_log)
        self.writer = TraceWriter(
            path,
            secrets=secrets,
            forward=self.forwarder.send if self.forwarder is not None else None,
            root_metadata=root_metadata,
        )
        self.path = self.writer.path
        self.project = project
        self.forward_unfinished = False  # live tracing had not sent everything when finish() gave up

    @property
    def forward_url(self) -> str | None:
        """Where runs are forwarded (live tracing), or None."""
        return None if self.forwarder is None else str(self.forwarder.client.api_url)

    def post(self, record: dict[str, Any], inputs: Any = None) -> None:
        """A run started (see :meth:`lapt.runs.trace_file.TraceWriter.post`)."""
        self.writer.post(record, inputs)

    def patch(self, run_id: str, fields: Mapping[str, Any]) -> None:
        """A run ended (see :meth:`lapt.runs.trace_file.TraceWriter.patch`)."""
        self.writer.patch(run_id, fields)

    # -- the langsmith.Client interface (LangChainTracer, @traceable, langsmith.trace) ----------------
    def create_run(
        self, name: str, inputs: dict[str, Any], run_type: str, *, project_name: str | None = None, **kwargs: Any
    ) -> None:
        """Record a run start sent the way LangSmith's own tracers send it."""
        record = _from_client_kwargs(kwargs)
        record |= {"name": name, "run_type": run_type, "inputs": inputs}
        record.setdefault("id", str(uuid.uuid4()))
        record.setdefault("start_time", dt.datetime.now(dt.UTC).isoformat())
        self.writer.post(record)

    def update_run(self, run_id: Any, **kwargs: Any) -> None:
        """Record a run end sent the way LangSmith's own tracers send it."""
        fields = _from_client_kwargs(kwargs)
        fields.setdefault("end_time", dt.datetime.now(dt.UTC).isoformat())
        self.writer.patch(str(run_id), fields)

    def flush(self, timeout: float | None = None) -> None:
        """Write what is pending now."""
        self.writer.flush()

    def finish(self, forward_timeout_s: float = 5.0) -> dict[str, int]:
        """Compact the file (:meth:`TraceWriter.finish`) and finish forwarding, waiting a bounded time."""
        try:
            counts = self.writer.finish()
        finally:
            if self.forwarder is not None and not self.forwarder.close(forward_timeout_s):
                self.forward_unfinished = True
        return counts

    def forward_problem(self, error: str | None = None) -> str | None:
        """What live tracing failed to do, in words naming how many runs did not reach the endpoint
        (this session's and an earlier killed session's), with ``error`` (the first one reported) as
        the reason; None when every written run arrived. Call after :meth:`finish`."""
        parts: list[str] = []
        if self.forwarder is not None:
            unsent, written = self.forwarder.unsent(), len(self.forwarder.written)
            if unsent:
                parts.append(f"{unsent} of the {written} runs written did not reach it")
            if self.earlier_unsent:
                parts.append(f"{self.earlier_unsent} runs of an earlier, interrupted session never reached it")
        if not parts and error is None and not self.forward_unfinished:
            return None
        reason = error or ("it did not take every run within 5 s" if self.forward_unfinished else None)
        return "; ".join(parts + ([reason] if reason else []))


SENT_LOG_SUFFIX = ".sent"
"""``trace.sent`` next to ``trace.jsonl``: the id of every run whose complete line reached the endpoint."""


def _never_sent(path: Path, sent_log: Path) -> int:
    """Runs complete in the trace file ``path`` but not in ``sent_log``: what an earlier live session
    wrote and never delivered (it was killed with lines still queued). 0 when no earlier session traced
    live (no log), since then nothing was meant to be sent."""
    if not sent_log.is_file() or not path.is_file():
        return 0
    sent = set(sent_log.read_text(errors="replace").split())
    ended: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                run = load_json(line)
            except ValueError:  # a torn last line, or one nested too deeply: not a run
                continue
            if isinstance(run, dict) and run.get("id") and run.get("end_time"):
                ended.add(str(run["id"]))
    return len(ended - sent)


class LiveForwarder:
    """Sends the lines a :class:`FileTraceClient` writes to LangSmith, in batches, from a daemon thread.

    A start line goes as a run to create and the complete line of the same run later as its update; a
    run written only complete goes as one create. Sending happens off the run's thread, so a slow
    endpoint costs the run nothing, and the thread is a daemon, so a dead one cannot hold up the exit
    (LangSmith's own background sender can, for ~15 s). :meth:`close` waits a bounded time.

    It counts what it was given and what arrived: :attr:`written` (runs whose complete line was
    written) and :attr:`delivered` (those whose complete line the endpoint took, appended to
    ``sent_log`` as they arrive), so a lost run is reported, by this session or, after a kill, by the
    next one on the same file. A batch is lost when the client reports an error for it (its error
    callback) or raises.
    """

    def __init__(self, client: langsmith.Client, project: str, sent_log: Path | None = None):
        self.client = client
        self.project = project
        self.written: set[str] = set()
        self.delivered: set[str] = set()
        self._sent_log = sent_log
        if sent_log is not None:
            sent_log.touch()  # from now on a missing id means "written, never delivered"
        self._batch_failed = False
        reported = getattr(client, "_tracing_error_callback", None)

        def on_error(exc: Exception) -> None:
            self._batch_failed = True
            if reported is not None:
                reported(exc)

        if hasattr(client, "_tracing_error_callback"):  # langsmith reports send failures only there
            client._tracing_error_callback = on_error
        self._queue: queue.Queue[tuple[str, str, bool] | None] = queue.Queue()
        self._started: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="lapt-live-trace", daemon=True)
        self._thread.start()

    def send(self, lines: Sequence[tuple[str, str, bool]]) -> None:
        """Queue ``(run id, line, is a start line)`` entries (called with the file lock held: cheap)."""
        for item in lines:
            if not item[2]:
                self.written.add(item[0])
            self._queue.put(item)

    def unsent(self) -> int:
        """Runs written complete whose complete line has not reached the endpoint (yet)."""
        return len(self.written - self.delivered)

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
                complete = [item[0] for item in batch if item is not None and not item[2]]
                self._batch_failed = False
                try:
                    self.client.multipart_ingest(create=create, update=update)  # errors go to its error callback
                except Exception:  # failure-is-data boundary: a lost batch is counted, the thread goes on
                    self._batch_failed = True
                if not self._batch_failed:
                    self._delivered(complete)

    def _delivered(self, run_ids: Sequence[str]) -> None:
        self.delivered.update(run_ids)
        if self._sent_log is not None and run_ids:
            with contextlib.suppress(OSError), open(self._sent_log, "a") as fh:  # bookkeeping, never fatal
                fh.write("".join(f"{r}\n" for r in run_ids))

    def close(self, timeout_s: float) -> bool:
        """Send what is queued, waiting at most ``timeout_s``; True if everything went out."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


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
