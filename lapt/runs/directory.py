"""The run directory: everything a run decided and measured, as plain files.

Layout::

    config.json        resolved settings (no secrets), prompt hashes, lapt version, input hashes
    principles/vN.json every PrincipleSet version
    masks/vN.json      every mask version with its rationale, size and source
    decisions.jsonl    one line per agent decision (which tasks' data it saw, fallbacks)
    trials.jsonl       one line per evaluation
    summary.json       the result

The record files are written by one writer (:class:`lapt.graph.recorder.RunRecorder`) as the run goes,
so a killed run leaves everything it finished. JSON-lines files are appended a whole line at a time;
whole files go through a temporary file and ``os.replace`` so a reader never sees half a file. A line
torn by a kill is dropped when the run is resumed (:meth:`RunDirectory.keep_lines`).

A folder is only ever written to if it is empty, or holds a run of the same settings (a resume): a
folder with anything else in it is refused before anything is touched (:meth:`RunDirectory.check_new`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from lapt.errors import UserError

CONFIG = "config.json"
TRIALS = "trials.jsonl"
DECISIONS = "decisions.jsonl"
SUMMARY = "summary.json"
PRINCIPLES = "principles"
MASKS = "masks"
LOCK = ".lock"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def default_run_dir(root: Path = Path("runs")) -> Path:
    """A new folder under ``./runs`` named by time and a counter."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = root / (stamp if i == 0 else f"{stamp}-{i}")
        if not path.exists():
            return path
    raise UserError(f"cannot find a free run directory under {root}")


def _line(entry: dict[str, Any]) -> str:
    """One JSON line, without empty fields (no error, no extras): readers validate each line, which fills
    them in, and a long run writes a line per evaluation."""
    return json.dumps({k: v for k, v in entry.items() if v is not None and v != {}}, sort_keys=True) + "\n"


class RunDirectory:
    """Reader and writer of one run's folder (the writing is done by the run's recorder only)."""

    def __init__(self, path: Path):
        self.path = path
        self._appenders: dict[str, IO[str]] = {}

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    def holds_run(self) -> bool:
        """True when the folder already holds a run."""
        return self.config_path.exists()

    def check_new(self) -> None:
        """Refuse a folder that exists and holds anything (a run, or files of something else).

        Only the lock file may be there already: the run takes it before checking.
        """
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"run directory {self.path} exists and is not a directory")
        if self.holds_run():
            raise UserError(f"run directory {self.path} already holds a run (use `lapt resume {self.path}`)")
        if self.path.is_dir():
            found = sorted(p.name for p in self.path.iterdir() if p.name != LOCK)
            if found:
                shown = ", ".join(found[:12]) + (f" and {len(found) - 12} more" if len(found) > 12 else "")
                raise UserError(
                    f"run directory {self.path} is not empty (it holds {shown}) but holds no run "
                    "(no config.json); nothing was changed: choose another --run-dir"
                )

    def create(self, config: dict[str, Any]) -> None:
        """Write the config first: from here on the folder holds a run (only after all input was validated)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
        (self.path / PRINCIPLES).mkdir(exist_ok=True)
        (self.path / MASKS).mkdir(exist_ok=True)

    def read_config(self) -> dict[str, Any]:
        """The saved config; UserError if the folder holds no run or the file is not a config."""
        if not self.path.exists():
            raise UserError(f"{self.path} does not exist")
        if not self.path.is_dir():
            raise UserError(f"{self.path} is a file, not a run directory")
        try:
            data = json.loads(self.config_path.read_text())
        except FileNotFoundError as e:
            raise UserError(f"{self.path} holds no run (no config.json)") from e
        except IsADirectoryError as e:
            raise UserError(f"{self.config_path} is a directory, not a run config") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{self.config_path} is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise UserError(f"{self.config_path} is not a run config (a JSON object)")
        return data

    # -- JSON-lines record files ------------------------------------------------------------------------
    def append(self, name: str, entries: list[dict[str, Any]]) -> None:
        """Append whole JSON lines to ``name`` and flush (the file stays open for the next append)."""
        if not entries:
            return
        fh = self._appenders.get(name)
        if fh is None:
            fh = self._appenders[name] = open(self.path / name, "a", encoding="utf-8")  # noqa: SIM115 - see close()
        fh.write("".join(_line(e) for e in entries))
        fh.flush()

    def read_lines(self, name: str) -> list[dict[str, Any]]:
        """The whole lines of ``name`` (a torn last line, as a kill leaves it, is left out)."""
        path = self.path / name
        if not path.exists():
            return []
        if not path.is_file():
            raise UserError(f"cannot resume {self.path}: {name} is not a file")
        out: list[dict[str, Any]] = []
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        for number, line in enumerate(lines[:-1], 1):  # the last piece has no newline: empty or torn
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"cannot resume {self.path}: {name} line {number} is not valid JSON") from e
        return out

    def torn(self, name: str) -> bool:
        """Whether ``name`` ends with a line a kill cut short (anything after its last newline)."""
        path = self.path / name
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"

    def keep_lines(self, name: str, entries: list[dict[str, Any]]) -> None:
        """Make ``name`` hold exactly ``entries`` (whole lines; used when a resume repairs the record)."""
        self.close_file(name)
        atomic_write(self.path / name, "".join(_line(e) for e in entries))

    # -- versioned records (principles, masks) ---------------------------------------------------------
    def write_version(self, folder: str, record: dict[str, Any]) -> None:
        """``folder/v<version>.json``, written atomically."""
        # One line: a long run writes hundreds of versions (``jq .`` shows one indented).
        atomic_write(self.path / folder / f"v{record['version']}.json", json.dumps(record) + "\n")

    def read_versions(self, folder: str) -> list[dict[str, Any]]:
        """Every ``folder/vN.json`` in version order; UserError when the folder is missing or a file."""
        where = self.path / folder
        if not where.is_dir():
            raise UserError(f"cannot resume {self.path}: {folder}/ is {'a file' if where.exists() else 'missing'}")
        out = []
        for path in where.glob("v*.json"):
            try:
                record = json.loads(path.read_text())
                version = int(path.stem[1:])
            except (ValueError, json.JSONDecodeError, UnicodeDecodeError) as e:
                raise UserError(f"cannot resume {self.path}: {folder}/{path.name} is not a valid record") from e
            if not isinstance(record, dict) or record.get("version") != version:
                raise UserError(f"cannot resume {self.path}: {folder}/{path.name} is not version {version}")
            out.append(record)
        return sorted(out, key=lambda r: int(r["version"]))

    def drop_versions_after(self, folder: str, version: int) -> None:
        """Remove ``folder/vN.json`` for N > ``version`` (written ahead of the checkpoint a resume starts from)."""
        for path in (self.path / folder).glob("v*.json"):
            if path.stem[1:].isdigit() and int(path.stem[1:]) > version:
                path.unlink()

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.path / SUMMARY, json.dumps(summary, indent=2, sort_keys=True) + "\n")

    def read_summary(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.path / SUMMARY).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    # -- closing ----------------------------------------------------------------------------------------
    def close_file(self, name: str) -> None:
        fh = self._appenders.pop(name, None)
        if fh is not None:
            fh.close()

    def close(self) -> None:
        """Close the files kept open for appending."""
        for name in list(self._appenders):
            self.close_file(name)
