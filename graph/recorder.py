"""The one writer of a run's record: node updates in, files, progress and results out.

The runner streams the graph's updates (``stream_mode="updates"``) and hands each to
:meth:`RunRecorder.apply`. Every fact in an update carries its place in the record (a trial its index,
a decision its ``seq``, a principle set or a mask its version), so the recorder appends exactly the
facts that come next and skips the ones it already has: LangGraph re-emits the updates of a step it
re-applies on a resume, and those must not be written twice.

The record is the run directory's ``trials.jsonl``, ``decisions.jsonl``, ``principles/`` and
``masks/`` (when the run has one), the same lists in memory (what :class:`~lapt.runs.result.RunResult`
returns), the progress bar, and the principle library (each new principle set, once).

Resuming (:meth:`RunRecorder.resume`): a killed process may have written its files ahead of its last
committed checkpoint (updates are streamed before their checkpoints commit, asynchronously) or one step
behind it (LangGraph streams a step's update at the latest when the next step starts, so a kill can
fall between a commit and the write). The checkpoint's counters say how long each record is and its
latest entries hold what its last step added, so the files are cut back or completed to match it
exactly, before the run continues.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lapt.errors import UserError
from lapt.runs.directory import DECISIONS, MASKS, PRINCIPLES, TRIALS, RunDirectory


class RunRecorder:
    """Writes the run's record from node updates; keeps it in memory for the result.

    Args:
        run_dir: the run directory, or None for a run kept in memory only.
        on_trials: called with each batch of new trials (the progress bar).
        on_principles: called with each new principle set (the principle library).
        on_failure: called with each failed agent decision (the progress bar says so as it happens).
    """

    def __init__(
        self,
        run_dir: RunDirectory | None,
        *,
        on_trials: Callable[[Sequence[dict[str, Any]]], None] | None = None,
        on_principles: Callable[[dict[str, Any]], None] | None = None,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.run_dir = run_dir
        self.on_trials = on_trials
        self.on_principles = on_principles
        self.on_failure = on_failure
        self.trials: list[dict[str, Any]] = []
        self.decisions: list[dict[str, Any]] = []
        self.principles: list[dict[str, Any]] = []
        self.masks: list[dict[str, Any]] = []

    # -- streaming ----------------------------------------------------------------------------------
    def apply(self, update: Mapping[str, Any]) -> None:
        """Record the new facts of one node's update (facts already recorded are skipped)."""
        for pset in update.get("principles") or ():
            self._version(PRINCIPLES, self.principles, pset)
        mask = update.get("mask")
        if mask is not None:
            self._version(MASKS, self.masks, mask)
        decisions = [d for d in update.get("decisions") or () if d["seq"] >= len(self.decisions)]
        if decisions:
            self._append(DECISIONS, self.decisions, decisions, "seq")
            if self.on_failure is not None:
                for d in decisions:
                    if d.get("ok") is False:
                        self.on_failure(d)
        trials = [t for t in update.get("trials") or () if t["index"] >= len(self.trials)]
        if trials:
            self._append(TRIALS, self.trials, trials, "index")
            if self.on_trials is not None:
                self.on_trials(trials)

    def _append(self, name: str, held: list[dict[str, Any]], new: list[dict[str, Any]], key: str) -> None:
        for i, entry in enumerate(new):
            if entry[key] != len(held) + i:
                raise RuntimeError(f"{name}: entry {entry[key]} does not follow entry {len(held) + i - 1}")
        held.extend(new)
        if self.run_dir is not None:
            self.run_dir.append(name, new)

    def _version(self, folder: str, held: list[dict[str, Any]], record: dict[str, Any]) -> None:
        version = int(record["version"])
        if version < len(held):
            return  # re-emitted on a resume: already recorded
        if version != len(held):
            raise RuntimeError(f"{folder}: version {version} does not follow version {len(held) - 1}")
        held.append(record)
        if self.run_dir is not None:
            self.run_dir.write_version(folder, record)
        if folder == PRINCIPLES and self.on_principles is not None:
            self.on_principles(record)

    # -- resuming -----------------------------------------------------------------------------------
    def resume(self, values: Mapping[str, Any]) -> None:
        """Load the run directory's record and make it match the checkpoint ``values`` exactly.

        Raises:
            UserError: the record cannot be brought in line (files missing or damaged beyond the last
                step), so the run cannot be resumed without mixing two histories.
        """
        w = self.run_dir
        if w is None:
            raise RuntimeError("only a run with a run directory can be resumed")
        self.trials = self._repair_lines(w, TRIALS, values.get("trials") or [], int(values.get("n_trials", 0)), "index")
        self.decisions = self._repair_lines(
            w, DECISIONS, values.get("decisions") or [], int(values.get("n_decisions", 0)), "seq"
        )
        principles = values.get("principles") or []
        self.principles = self._repair_versions(w, PRINCIPLES, principles[-1] if principles else None)
        self.masks = self._repair_versions(w, MASKS, values.get("mask"))

    @staticmethod
    def _repair_lines(
        w: RunDirectory, name: str, latest: Sequence[dict[str, Any]], count: int, key: str
    ) -> list[dict[str, Any]]:
        held = w.read_lines(name)
        if any(entry.get(key) != i for i, entry in enumerate(held)):
            raise UserError(f"cannot resume {w.path}: {name} is not the record of this run (entries out of order)")
        repaired = held[:count]
        missing = [e for e in latest if len(repaired) <= e[key] < count]
        repaired += sorted(missing, key=lambda e: e[key])
        if len(repaired) != count or any(e[key] != i for i, e in enumerate(repaired)):
            raise UserError(
                f"cannot resume {w.path}: {name} holds {len(held)} entries, the last checkpoint {count}, and the "
                "difference is more than the last step: the record was changed or damaged"
            )
        if repaired != held or w.torn(name):
            w.keep_lines(name, repaired)  # also drops a line torn by the kill
        return repaired

    @staticmethod
    def _repair_versions(w: RunDirectory, folder: str, latest: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        last = -1 if latest is None else int(latest["version"])
        w.drop_versions_after(folder, last)
        held = [r for r in w.read_versions(folder) if int(r["version"]) <= last]
        if latest is not None and len(held) == last:  # the newest version's file was not written yet
            w.write_version(folder, dict(latest))
            held.append(dict(latest))
        if [int(r["version"]) for r in held] != list(range(last + 1)):
            raise UserError(
                f"cannot resume {w.path}: {folder}/ lacks versions of this run (it has {len(held)} of {last + 1})"
            )
        return held

    def close(self) -> None:
        """Close the files held open for appending."""
        if self.run_dir is not None:
            self.run_dir.close()
