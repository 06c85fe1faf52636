"""Benchmark tables shipped inside the package, verified against their sha256 on load.

Tables are dense arrays in the canonical enumeration order of their space (its grid of op
combinations), so a lookup is one index computation and one array read. Every built-in metric is
"higher is better" (room_layout is a negative loss); a user space may declare a lower-is-better one,
and :meth:`BenchmarkTable.fitness` gives every column the "higher is better" orientation selection
uses. NAS-Bench-201 has validation and test accuracy; TransNAS-Bench-101 publishes one final validation
metric per task, so its ``test`` is None and reports fall back to it explicitly.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lapt.errors import TableIntegrityError, UserError
from lapt.spaces import Genotype, SearchSpace, get_space
from lapt.spaces.cell import CellSpace

DATA_DIR = Path(__file__).resolve().parent / "data"

# table name -> (space, file, fidelity label)
TABLES: dict[str, tuple[str, str, str]] = {
    "nb201": ("nb201", "nb201_200epoch.npz", "200 epochs"),
    "nb201-12epoch": ("nb201", "nb201_12epoch.npz", "12 epochs"),
    "tnb101": ("tnb101", "tnb101_micro.npz", "final epoch"),
}


@dataclass(frozen=True)
class Metrics:
    """Metrics of one architecture on one task: selection uses ``val``; ``test`` is only reported."""

    val: float
    test: float | None


def read_verified(name: str, data_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Read a shipped ``.npz`` after checking its sha256 against ``tables.json``.

    Raises:
        TableIntegrityError: the file is missing, truncated or altered.
    """
    base = data_dir or DATA_DIR
    path = base / name
    try:
        manifest = json.loads((base / "tables.json").read_text())
        expected = manifest[name]["sha256"]
        data = path.read_bytes()
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise TableIntegrityError(f"benchmark table {path} cannot be read: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise TableIntegrityError(
            f"benchmark table {path} is corrupted or truncated (sha256 {digest[:12]}..., "
            f"expected {expected[:12]}...); reinstall lapt"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise TableIntegrityError(f"benchmark table {path} cannot be decoded: {e}") from e


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
        codes of :func:`lapt.evidence.layer_statistics`) is done once for every task.
        """
        archs, rows = self._measured_rows
        return archs, self.fitness(task)[rows]


TABLELESS_BUILTINS = ("darts",)
"""Built-in spaces without a shipped table: evaluated by training their networks."""


@functools.cache
def load_table(name: str) -> BenchmarkTable:
    """Load (once per process) the shipped table called ``name``: nb201, nb201-12epoch or tnb101."""
    if name not in TABLES:
        raise UserError(f"unknown benchmark table {name!r} (known: {', '.join(TABLES)})")
    space_name, file, fidelity = TABLES[name]
    space = get_space(space_name)
    if not isinstance(space, CellSpace):
        raise UserError(f"space {space_name} has no benchmark table")
    return BenchmarkTable(name, space, read_verified(file), fidelity)


def table_for_space(space: SearchSpace) -> BenchmarkTable | None:
    """The default (highest-fidelity) table of a built-in space, or None (DARTS has none)."""
    return load_table(space.name) if space.name in TABLES else None


def table_for(space: SearchSpace) -> BenchmarkTable | None:
    """The table ``space`` is evaluated with: a built-in default, or the table a user space file declares."""
    from lapt.spaces.user import UserSpace

    if isinstance(space, UserSpace):
        if space.table_data is None:
            return None
        from lapt.spaces.user_table import load_user_table

        return load_user_table(space)
    return table_for_space(space)


def evaluation_table(space: SearchSpace, table_name: str | None = None) -> BenchmarkTable:
    """The table a run on ``space`` is evaluated with: ``table_name`` (e.g. ``nb201-12epoch``), or the
    space's own (built-in, or declared by its space file); UserError if there is none."""
    if table_name is not None:
        table = load_table(table_name)
        if table.space.name != space.name:
            raise UserError(f"table {table_name!r} belongs to space {table.space.name!r}, not {space.name!r}")
        return table
    default = table_for(space)
    if default is None:
        if space.name in TABLELESS_BUILTINS:
            raise UserError(f"space {space.name!r} has no benchmark table: use --evaluator train to evaluate it")
        raise UserError(
            f"space {space.name!r} declares no benchmark table, and lapt has no network to train for it: "
            "add a [table] section to its space file (docs/user_spaces.md)"
        )
    return default


@functools.cache
def load_latency() -> tuple[tuple[str, ...], np.ndarray]:
    """NB201 latency in ms: (device names, array[cell index, device])."""
    arrays = read_verified("nb201_latency_ms.npz")
    return tuple(str(d) for d in arrays["devices"]), arrays["latency_ms"]
