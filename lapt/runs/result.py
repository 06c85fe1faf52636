"""What a run produced: the same facts as its run directory, as Python objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapt.runs.config import RunSettings
from lapt.schemas import PrincipleSet, Trial


@dataclass(frozen=True)
class RunResult:
    """A finished (or stopped) run.

    Attributes:
        settings: the resolved settings.
        trials: every evaluation, in order.
        principles: every principle set version, oldest first.
        masks: every mask version (``{"version", "round", "mask", "size", "source", "note"}``).
        decisions: every agent decision, in order.
        summary: the content of ``summary.json``.
        run_dir: the run directory, or None for a run kept in memory.
        prompt_hashes: sha256 of every prompt file used.
    """

    settings: RunSettings
    trials: list[Trial]
    principles: list[PrincipleSet]
    masks: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    summary: dict[str, Any]
    run_dir: Path | None = None
    prompt_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def degraded(self) -> list[str]:
        """Why the run is not the method it was asked to be (empty when every agent answered)."""
        return list(self.summary.get("degraded") or [])
