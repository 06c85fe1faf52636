"""Which table a space is evaluated with: a built-in default, one named on the command line, or the
table a user space file declares."""

from __future__ import annotations

from lapt.errors import UserError
from lapt.spaces import SearchSpace
from lapt.spaces.user import UserSpace
from lapt.tables.base import BenchmarkTable
from lapt.tables.builtin import TABLELESS_BUILTINS, TABLES, load_table
from lapt.tables.user import load_user_table


def table_for_space(space: SearchSpace) -> BenchmarkTable | None:
    """The default (highest-fidelity) table of a built-in space, or None (DARTS has none)."""
    return load_table(space.name) if space.name in TABLES else None


def table_for(space: SearchSpace) -> BenchmarkTable | None:
    """The table ``space`` is evaluated with: a built-in default, or the table a user space file declares."""
    if isinstance(space, UserSpace):
        if space.table_data is None:
            return None
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
