"""The principle library: every learned or adapted PrincipleSet, with where it came from, in SQLite.

Principles are the transferable product of LAPT, so they outlive runs: a set learned once on a source
task can seed searches on other tasks and spaces. Each set is stored with its provenance (space,
source tasks, reasoner and model, prompt hashes, date, run id, parent id when adapted) so that a reader
can tell what data its author saw.

The store is one SQLite file shared by every process of a user. WAL mode, a busy timeout and one
``BEGIN IMMEDIATE`` transaction per write let several runs add sets at once, and a process killed
mid-write leaves every committed record readable (SQLite's journal rolls back the partial one).
``synchronous = NORMAL`` is enough for that in WAL mode; only a power cut could lose the last commits.
Records are immutable; an id is the first 12 hex digits of the sha256 of the record's canonical JSON
(which includes the run id and date), so adding the same record twice is harmless.

Location, most specific first: an explicit path (``--store``), ``$LAPT_PRINCIPLE_STORE``, then
``platformdirs.user_data_dir("lapt")/principles.sqlite``. Reading a library that does not exist yet
finds it empty and creates nothing; a path that is a directory, a file that is not SQLite, or a SQLite
database holding other tables is refused (:class:`~lapt.errors.UserError`) rather than written into; a
library that cannot be written (read-only folder, lock held too long, full disk) is a
:class:`StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from lapt.errors import EnvironmentFailure, UserError
from lapt.files.sqlite_locks import BUSY_TIMEOUT_S
from lapt.files.sqlite_locks import retry_locked as _retry_locked
from lapt.schemas import PrincipleSet

ENV_VAR = "LAPT_PRINCIPLE_STORE"
SCHEMA_VERSION = 1
_ID = re.compile(r"^[0-9a-f]{4,12}$")
_T = TypeVar("_T")


class StoreUnavailable(EnvironmentFailure):
    """The library cannot be opened or written now: its folder is read-only, another process holds its
    lock for longer than the busy timeout, the disk is full. Not the user's input: exit status 1."""


_UNAVAILABLE = ("locked", "busy", "readonly", "read-only", "unable to open", "disk is full", "disk i/o")


def _failure(path: Path, e: sqlite3.Error) -> Exception:
    """A SQLite error as StoreUnavailable (the environment) or UserError (the file is not a library)."""
    text = str(e)
    if isinstance(e, sqlite3.OperationalError) and any(k in text.lower() for k in _UNAVAILABLE):
        return StoreUnavailable(f"principle store {path}: {text}")
    return UserError(f"principle store {path} cannot be used: {text}")


class PrincipleProvenance(BaseModel):
    """Where a principle set came from: enough to judge it and to check it saw no target data."""

    model_config = ConfigDict(extra="forbid")

    space: str = Field(min_length=1, description="Search space the principles were learned on.")
    source_tasks: list[str] = Field(default_factory=list, description="Tasks whose data the author saw.")
    reasoner: str = Field(default="", description="Who wrote them: 'llm', 'offline', 'human'...")
    model: str = Field(default="", description="Chat model name, when an LLM wrote them.")
    prompt_hashes: dict[str, str] = Field(default_factory=dict, description="Prompt file -> sha256.")
    created: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    run_id: str = ""
    parent_id: str | None = Field(default=None, description="Id of the set this one adapts, if any.")


class StoredPrinciples(BaseModel):
    """A principle set as the library holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    provenance: PrincipleProvenance
    principle_set: PrincipleSet


class PrincipleExport(BaseModel):
    """The JSON file ``export`` writes and ``import`` reads."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["lapt-principles"] = "lapt-principles"
    format_version: Literal[1] = 1
    id: str | None = Field(default=None, description="Checked against the content when present.")
    provenance: PrincipleProvenance
    principle_set: PrincipleSet


def canonical_record(provenance: PrincipleProvenance, principle_set: PrincipleSet) -> str:
    """The JSON text that identifies a record: sorted keys, no spaces, UTC dates."""
    body = {
        "provenance": provenance.model_dump(mode="json"),
        "principle_set": principle_set.model_dump(mode="json"),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_id(provenance: PrincipleProvenance, principle_set: PrincipleSet) -> str:
    """Short, stable id of a record: 12 hex digits of the sha256 of its canonical JSON."""
    return hashlib.sha256(canonical_record(provenance, principle_set).encode()).hexdigest()[:12]


def default_store_path() -> Path:
    """``user_data_dir("lapt")/principles.sqlite``."""
    import platformdirs

    return Path(platformdirs.user_data_dir("lapt")) / "principles.sqlite"


def resolve_store_path(explicit: str | Path | None = None) -> Path:
    """The store to use: ``explicit`` if given, else ``$LAPT_PRINCIPLE_STORE``, else the default."""
    if explicit:
        return Path(os.path.abspath(Path(explicit).expanduser()))
    env = os.environ.get(ENV_VAR)
    return Path(os.path.abspath(Path(env).expanduser())) if env else default_store_path()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS principle_sets (
    id TEXT PRIMARY KEY,
    space TEXT NOT NULL,
    created TEXT NOT NULL,
    run_id TEXT NOT NULL,
    parent_id TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS principle_sets_by_space ON principle_sets (space, created);
"""


class PrincipleStore:
    """A local SQLite library of principle sets; safe to share between processes.

    The connection is opened on first use and reopened after a fork, because SQLite connections must
    not cross processes.
    """

    def __init__(self, path: str | Path | None = None, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = resolve_store_path(path)
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def check(self) -> None:
        """Refuse now (one line) a path that cannot be a library: a directory, or another kind of file.

        Cheap and writes nothing, for commands that want bad input refused before any work.
        """
        if self.path.is_dir():
            example = self.path / "principles.sqlite"
            raise UserError(f"principle store {self.path}: is a directory; give a file (e.g. {example})")
        if self.path.exists() and not self.path.is_file():
            raise UserError(f"principle store {self.path}: is not a regular file")

    def check_usable(self) -> None:
        """Refuse now a library that a later :meth:`add` could not write: :meth:`check`, then open an
        existing file (which refuses one that is not a library) or check that its folder can be created.

        Raises:
            UserError: not a library (see :meth:`check`).
            StoreUnavailable: the library or its folder cannot be written.
        """
        self.check()
        if self.path.exists():
            self._connect()
            return
        from lapt.files.outputs import check_writable_dir

        try:
            check_writable_dir(self.path.parent, "principle store folder")
        except EnvironmentFailure as e:
            raise StoreUnavailable(str(e)) from e

    # -- public API ----------------------------------------------------------------------------------
    def add(self, principle_set: PrincipleSet, provenance: PrincipleProvenance) -> str:
        """Store ``principle_set`` with its provenance; return its id (the same id if already stored)."""
        record = canonical_record(provenance, principle_set)
        rid = hashlib.sha256(record.encode()).hexdigest()[:12]
        created = provenance.created.astimezone(UTC).isoformat()  # sortable as text
        row = (rid, provenance.space, created, provenance.run_id, provenance.parent_id, record)

        def write(conn: sqlite3.Connection) -> None:
            found = conn.execute("SELECT record FROM principle_sets WHERE id = ?", (rid,)).fetchone()
            if found is None:
                conn.execute("INSERT INTO principle_sets VALUES (?, ?, ?, ?, ?, ?)", row)
            elif found[0] != record:
                raise UserError(f"principle store {self.path}: id {rid} already holds a different record")

        self._write(write)
        return rid

    def get(self, id_: str) -> StoredPrinciples:
        """The record with id ``id_`` (or a unique prefix of at least 4 hex digits of it).

        Raises:
            UserError: no record, or several, match.
        """
        key = id_.strip().lower()
        if not _ID.match(key):
            raise UserError(f"unknown principle set id {id_!r} (ids are 12 hex digits; see 'lapt principles list')")
        rows: list[tuple[str, str]] = self._read(
            lambda c: c.execute(
                "SELECT id, record FROM principle_sets WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 2",
                (len(key), key),
            ).fetchall(),
            [],
        )
        if not rows:
            raise UserError(f"unknown principle set id {id_!r} in {self.path}")
        if len(rows) > 1:
            raise UserError(f"principle set id {id_!r} is ambiguous ({rows[0][0]}, {rows[1][0]}, ...)")
        return self._parse(rows[0][0], rows[0][1])

    def list(self, space: str | None = None) -> list[StoredPrinciples]:
        """Every record (of ``space``, if given), oldest first (ties in insertion order)."""
        query = "SELECT id, record FROM principle_sets"
        params: tuple[Any, ...] = ()
        if space is not None:
            query += " WHERE space = ?"
            params = (space,)
        rows: list[tuple[str, str]] = self._read(
            lambda c: c.execute(query + " ORDER BY created, rowid", params).fetchall(), []
        )
        return [self._parse(rid, record) for rid, record in rows]

    def export(self, id_: str) -> dict[str, Any]:
        """The record as a JSON-ready dict in the export format (see :class:`PrincipleExport`)."""
        stored = self.get(id_)
        doc = PrincipleExport(id=stored.id, provenance=stored.provenance, principle_set=stored.principle_set)
        return doc.model_dump(mode="json")

    def import_(self, data: str | bytes | dict[str, Any], origin: str = "import") -> str:
        """Validate an exported record (JSON text or dict) and add it; return its id.

        Raises:
            UserError: not JSON, not the export format, a set that holds no principle or names a space,
                layer or op that does not exist (:func:`lapt.principles.checks.check_principle_set`),
                or an ``id`` that does not match the content.
        """
        if isinstance(data, str | bytes):
            from lapt.files.json_input import JSONTooDeep, load_json

            try:
                data = load_json(data)
            except JSONTooDeep as e:
                raise UserError(f"{origin}: not a lapt principle export: the JSON is {e}") from e
            except json.JSONDecodeError as e:
                raise UserError(f"{origin}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from e
            except UnicodeDecodeError as e:
                raise UserError(f"{origin}: not UTF-8 text ({e.reason})") from e
        try:
            doc = PrincipleExport.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "document"
            raise UserError(f"{origin}: not a lapt principle export: {where}: {err['msg']}") from e
        from lapt.principles.checks import check_principle_set  # late: it loads search spaces

        check_principle_set(doc.principle_set, doc.provenance.space, origin, named=True)
        rid = record_id(doc.provenance, doc.principle_set)
        if doc.id is not None and doc.id != rid:
            raise UserError(
                f"{origin}: id {doc.id} does not match the content (it hashes to {rid}); "
                "the file was edited: remove the id to import it as a new record"
            )
        return self.add(doc.principle_set, doc.provenance)

    def close(self) -> None:
        """Close the connection (it reopens on the next call)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- SQLite plumbing -----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.check()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(f"principle store {self.path}: cannot create its folder ({e.strerror or e})") from e
        timeout = self.busy_timeout_s
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise _failure(self.path, e) from e
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            _retry_locked(lambda: self._refuse_foreign(conn), timeout)  # before WAL mode rewrites the header
            _retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(), timeout)
            conn.execute("PRAGMA synchronous = NORMAL")
            _retry_locked(lambda: self._init_schema(conn), timeout)
        except sqlite3.Error as e:
            conn.close()
            raise _failure(self.path, e) from e
        except (UserError, EnvironmentFailure):
            conn.close()
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        with self._transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserError(f"principle store {self.path} was written by a newer lapt (schema {version})")
            if version < SCHEMA_VERSION:
                self._refuse_foreign(conn)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        """UserError for a SQLite file that is someone else's database: writing into it would be vandalism."""
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        others = [
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if row[0] != "principle_sets"
        ]
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise UserError(f"{self.path} is not a lapt principle library (it holds the table(s) {shown})")

    @staticmethod
    @contextlib.contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction: the write lock is taken up front, so writers queue instead of deadlocking."""
        conn.execute("BEGIN IMMEDIATE")
        with conn:  # commits on success, rolls back if the body raises
            yield

    def _write(self, body: Callable[[sqlite3.Connection], None]) -> None:
        conn = self._connect()

        def run() -> None:
            with self._transaction(conn):
                body(conn)

        try:
            _retry_locked(run, self.busy_timeout_s)
        except sqlite3.Error as e:
            raise _failure(self.path, e) from e

    def _read(self, query: Callable[[sqlite3.Connection], _T], missing: _T) -> _T:
        """``query`` on the library, or ``missing`` when there is no library yet (nothing is created)."""
        if not self.path.exists() and self._conn is None:
            self.check()
            return missing
        conn = self._connect()
        try:
            return _retry_locked(lambda: query(conn), self.busy_timeout_s)
        except sqlite3.Error as e:
            raise _failure(self.path, e) from e

    def _parse(self, rid: str, record: str) -> StoredPrinciples:
        try:
            body = json.loads(record)
            return StoredPrinciples(id=rid, **body)
        except (json.JSONDecodeError, TypeError, ValidationError) as e:
            raise UserError(f"principle store {self.path}: record {rid} is unreadable: {e}") from e
