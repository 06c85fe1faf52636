"""A benchmark table: the metrics of every architecture of a cell space, one dense column per task and split.

Tables are dense arrays in the canonical enumeration order of their space (its grid of op
combinations), so a lookup is one index computation and one array read. Every built-in metric is
"higher is better" (room_layout is a negative loss); a user space may declare a lower-is-better one,
and :meth:`BenchmarkTable.fitness` gives every column the "higher is better" orientation selection
uses. NAS-Bench-201 has validation and test accuracy; TransNAS-Bench-101 publishes one final validation
metric per task, so its ``test`` is None and reports fall back to it explicitly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lapt.errors import TableIntegrityError, UserError
from lapt.spaces.base import Genotype
from lapt.spaces.cell import CellSpace


@dataclass(frozen=True)
class Metrics:
    """Metrics of one architecture on one task: selection uses ``val``; ``test`` is only reported."""

    val: float
    test: float | None


class BenchmarkTable:
    """Validation (and, where published, test) metrics of every architecture of a cell space.

    Attributes:
        selection: the split selection uses: "val", or "test" for a benchmark that publishes test only
            (its ``val`` column then holds the test metric, and reports say so).
    """

    selection: str = "val"

    def __init__(self, name: str, space: CellSpace, arrays: dict[str, np.ndarray], fidelity: str):
        self.name = name
        self.space = space
        self.fidelity = fidelity
        self._val: dict[str, np.ndarray] = {}
        self._test: dict[str, np.ndarray] = {}
        for key, arr in arrays.items():
            if "/" not in key:
                continue
            task, split = key.split("/", 1)
            if arr.shape != (space.grid_size(),):
                raise TableIntegrityError(
                    f"table {name}: {key} has shape {arr.shape}, expected ({space.grid_size()},)"
                )
            (self._val if split == "val" else self._test)[task] = arr
        self.tasks: tuple[str, ...] = tuple(t for t in space.tasks if t in self._val)

    @property
    def has_test(self) -> bool:
        """True when the benchmark publishes a separate test metric."""
        return bool(self._test)

    def check_task(self, task: str) -> str:
        """Return ``task`` if this table has it; raise UserError naming the known tasks otherwise."""
        if task not in self._val:
            raise UserError(f"unknown task {task!r} for {self.space.name} (known: {', '.join(self.tasks)})")
        return task

    def lookup(self, genotype: Genotype, task: str) -> Metrics:
        """Metrics of ``genotype`` on ``task``."""
        self.check_task(task)
        i = self.space.index(genotype)
        test = self._test.get(task)
        return Metrics(val=float(self._val[task][i]), test=None if test is None else float(test[i]))

    def values(self, task: str, split: str = "val") -> np.ndarray:
        """The whole column, indexed like :meth:`CellSpace.index`; test falls back to val if absent."""
        self.check_task(task)
        if split == "test" and task in self._test:
            return self._test[task]
        return self._val[task]

    def fitness(self, task: str) -> np.ndarray:
        """The selection column of ``task`` oriented so that higher is better (negated for a
        lower-is-better metric): what thresholds, oracles and agents compare; NaN where unmeasured."""
        val = self.values(task, "val")
        return val if self.space.higher_is_better else -val

    def top(self, task: str, k: int) -> list[tuple[Genotype, float]]:
        """The ``k`` best measured architectures (by fitness), best first, with their validation metric
        (ties broken by index)."""
        fit = self.fitness(task)
        known = np.flatnonzero(~np.isnan(fit))
        order = known[np.lexsort((known, -fit[known]))][:k]
        val = self.values(task, "val")
        return [(self.space.from_index(int(i)), float(val[i])) for i in order]

    @functools.cached_property
    def _measured_rows(self) -> tuple[tuple[Genotype, ...], np.ndarray]:
        measured = np.zeros(self.space.grid_size(), dtype=bool)
        for column in self._val.values():
            measured |= ~np.isnan(column)
        rows = np.flatnonzero(measured)
        return tuple(self.space.from_index(int(i)) for i in rows), rows

    def measured(self, task: str) -> tuple[tuple[Genotype, ...], np.ndarray]:
        """The architectures the table holds and their fitness on ``task``, aligned (what a learner reads).

        The architecture tuple is one object per table, so per-architecture work keyed on it (the op
        codes of :func:`lapt.transfer.evidence.layer_statistics`) is done once for every task.
        """
        archs, rows = self._measured_rows
        return archs, self.fitness(task)[rows]
