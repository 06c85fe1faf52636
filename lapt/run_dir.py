"""The run directory: everything a run decided and measured, as plain files.

Layout::

    config.json        resolved settings (no secrets), prompt hashes, lapt version
    principles/vN.json every PrincipleSet version
    masks/vN.json      every mask version with its rationale, size and source
    decisions.jsonl    one line per agent decision (which tasks' data it saw, fallbacks)
    trials.jsonl       one line per evaluation
    summary.json       the result

Files are written as the run goes, so a killed run leaves everything it finished; writes of whole files
go through a temporary file and ``os.replace`` so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lapt.errors import UserError


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


class RunDirectory:
    """Writer for one run's folder."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def holds_run(self) -> bool:
        """True when the folder already holds a run."""
        return self.config_path.exists()

    def check_new(self) -> None:
        """Refuse a folder that holds another run (before any work starts)."""
        if self.holds_run():
            raise UserError(f"run directory {self.path} already holds a run (use `lapt resume {self.path}`)")
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"run directory {self.path} exists and is not a directory")

    def create(self, config: dict[str, Any]) -> None:
        """Create the folder and write the config (only after all input was validated)."""
        (self.path / "principles").mkdir(parents=True, exist_ok=True)
        (self.path / "masks").mkdir(exist_ok=True)
        atomic_write(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def read_config(self) -> dict[str, Any]:
        """The saved config; UserError if the folder holds no run."""
        try:
            data: dict[str, Any] = json.loads(self.config_path.read_text())
            return data
        except FileNotFoundError as e:
            raise UserError(f"{self.path} holds no run (no config.json)") from e
        except json.JSONDecodeError as e:
            raise UserError(f"{self.config_path} is not valid JSON: {e}") from e

    def write_principles(self, pset: dict[str, Any]) -> None:
        atomic_write(self.path / "principles" / f"v{pset['version']}.json", json.dumps(pset, indent=2) + "\n")

    def write_mask(self, record: dict[str, Any]) -> None:
        atomic_write(self.path / "masks" / f"v{record['version']}.json", json.dumps(record, indent=2) + "\n")

    def append(self, name: str, entries: list[dict[str, Any]]) -> None:
        """Append JSON lines (one flush per call)."""
        if not entries:
            return
        with open(self.path / name, "a") as fh:
            fh.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))

    def sync_trials(self, trials: list[dict[str, Any]]) -> None:
        """Make trials.jsonl hold exactly ``trials`` (after a resume, the checkpoint is the truth)."""
        atomic_write(self.path / "trials.jsonl", "".join(json.dumps(t, sort_keys=True) + "\n" for t in trials))

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.path / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
