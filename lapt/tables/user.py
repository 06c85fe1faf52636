"""The benchmark table of a user-defined space, read from the CSV its space file declares.

A table need not cover the whole space. :class:`UserTable` keeps the :class:`~lapt.tables.base.BenchmarkTable`
layout (one dense array per task, indexed like :meth:`CellSpace.index`) with NaN for architectures it
does not hold, so every consumer of built-in tables works unchanged; looking up a missing architecture
raises :class:`ArchNotInTable` instead of returning NaN.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from lapt.errors import UserError
from lapt.spaces.base import Genotype
from lapt.spaces.cell import CellSpace
from lapt.spaces.user import UserSpace
from lapt.spaces.user_csv import TableData
from lapt.tables.base import BenchmarkTable, Metrics


class ArchNotInTable(UserError):
    """The architecture is valid in the space but the (sparse) table has no row for it."""



class UserTable(BenchmarkTable):
    """A :class:`BenchmarkTable` read from a user CSV, dense or sparse, with its provenance.

    Attributes:
        path: the CSV it was read from.
        sha256: the CSV's sha256 (also the suffix of :attr:`name`, so evaluation caches key on content).
        rows: how many architectures it holds; ``dense`` when that is every valid architecture.
    """

    def __init__(self, space: CellSpace, data: TableData):
        n = space.grid_size()
        arrays: dict[str, np.ndarray] = {}
        for split, columns in (("val", data.val), ("test", data.test)):
            for task, values in columns.items():
                full = np.full(n, np.nan)
                full[data.index] = values
                arrays[f"{task}/{split}"] = full
        super().__init__(f"{space.name}@{data.sha256[:12]}", space, arrays, data.fidelity or "user table")
        self.path = data.path
        self.sha256 = data.sha256
        self.rows = data.rows
        self.dense = data.rows == space.size()
        self.selection = data.selection

    def check_task(self, task: str) -> str:
        """``task`` if the table has its columns. A task the space declares without columns (the docs allow
        it) is one the table does not measure: it can be the target of a run evaluated by the space's own
        code, and the refusal says so instead of calling the task unknown."""
        space = self.space
        if task not in self._val and isinstance(space, UserSpace) and task in space.tasks:
            code = space.function is not None or space.network is not None
            how = (
                "evaluate it with the space's own code (--evaluator python or train)"
                if code
                else "give the space an [evaluator] to evaluate it"
            )
            raise UserError(
                f"task {task!r} has no columns in {self.path.name}: the table does not measure it; {how} "
                f"(table tasks: {', '.join(self.tasks)})"
            )
        return super().check_task(task)

    def lookup(self, genotype: Genotype, task: str) -> Metrics:
        """Metrics of ``genotype`` on ``task``; :class:`ArchNotInTable` if the table lacks it."""
        self.check_task(task)
        if math.isnan(self._val[task][self.space.index(genotype)]):
            raise ArchNotInTable(
                f"{self.space.to_str(genotype)} is not in table {self.path.name} "
                f"({self.rows:,} of {self.space.size():,} architectures)"
            )
        return super().lookup(genotype, task)



@functools.cache
def load_user_table(space: UserSpace) -> UserTable:
    """The table ``space`` declares (built once per space object).

    Raises:
        UserError: the space file declares no table.
    """
    if space.table_data is None:
        raise UserError(f"space {space.name!r} declares no benchmark table ([table] in {space.source})")
    return UserTable(space, space.table_data)
