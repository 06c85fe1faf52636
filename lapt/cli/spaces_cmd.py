"""``lapt spaces``: the search spaces, their tasks and sizes (built-in, or read from ``--file``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from lapt.cli.printable import printable

if TYPE_CHECKING:
    from lapt.spaces import SearchSpace
    from lapt.spaces.user import UserSpace


def register(sub: Any) -> None:
    """Add the ``spaces`` sub-command."""
    p = sub.add_parser("spaces", help="list search spaces, their tasks and sizes")
    p.add_argument("--code", metavar="SPACE", help="print the code description of SPACE shown to agents")
    p.add_argument(
        "--file",
        metavar="PATH",
        action="append",
        help="show the user-defined space in this .toml file (and check it and its table) instead of the built-ins",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one block per space."""
    from lapt.spaces import builtin_space_names, get_space
    from lapt.tables.builtin import TABLES

    if args.code:
        print(get_space(args.code).describe_code())
        return 0
    if args.file:
        for path in args.file:
            _print_user_space(get_space(f"file:{path}"))
        return 0
    for name in builtin_space_names():
        space = get_space(name)
        tables = [t for t, (s, _, _) in TABLES.items() if s == name]
        _print_header(name, space)
        print(f"         tables: {', '.join(tables) if tables else '-'}")
    return 0


def _print_header(label: str, space: SearchSpace) -> None:
    from lapt.spaces.cell import CellSpace

    size = f"{space.size():,} architectures"
    if isinstance(space, CellSpace) and space.validity is not None:
        size += f" (of {space.grid_size():,} op combinations)"
    print(printable(f"{label:<8} {space.title}: {len(space.layers)} layers, {len(space.ops)} ops, {size}"))
    print(f"         ops: {', '.join(space.ops)}")
    print(f"         tasks: {', '.join(space.tasks) if space.tasks else '(none: evaluate by training)'}")


def _print_user_space(space: SearchSpace) -> None:
    from lapt.spaces.user import UserSpace

    if not isinstance(space, UserSpace):  # pragma: no cover - get_space("file:...") always builds one
        raise TypeError(f"{space.name} is not a user space")
    _print_header(space.name, space)
    print(f"         kind: {space.kind}; layers: {', '.join(space.layer_names)}")
    print(printable(f"         file: {space.source} (sha256 {space.spec_sha256[:12]})"))
    fmt = space.arch_format
    example = space.to_str(next(iter(space.enumerate(limit=space.size()))))
    omitted = "; left-out optional layers are not written (omit_absent)" if fmt.omit_absent else ""
    print(f"         arch format: {fmt.format}, e.g. {example}{omitted}")
    for line in _validity_lines(space):
        print(f"         {line}")
    d = space.search_defaults()
    print(
        f"         search: population {d.population}, tournament {d.tournament}, adapt every {d.adapt_every}, "
        f"max ops {d.max_ops}, top target {d.top_target}"
    )
    m = space.metric
    columns = ", ".join(f"{k} {v!r}" for k, v in (("validation", m.validation), ("test", m.test)) if v)
    direction = "higher" if m.higher_is_better else "lower"
    print(printable(f"         metric: {m.name or '-'}; {direction} is better; columns: {columns}"))
    refs = [(k, ref) for k, ref in (("function", space.function), ("network", space.network)) if ref is not None]
    if refs:
        named = "; ".join(f"{k} {ref.spec}" for k, ref in refs)
        print(printable(f"         evaluator: {named} (from {refs[0][1].path})"))
    data = space.table_data
    if data is None:
        print("         table: - (no [table] section: evaluate with its own code or by training)")
        return
    coverage = "every architecture" if data.rows == space.size() else f"{data.rows / space.size():.1%} of the space"
    tasks = ", ".join(t + (" (+test)" if t in data.test and data.selection == "val" else "") for t in space.tasks
                      if t in data.val)
    only = "; test only: selection uses it" if data.selection == "test" else ""
    name = data.path.name
    print(printable(f"         table: {name}, {data.rows:,} rows ({coverage}), sha256 {data.sha256[:12]}{only}"))
    print(f"         table tasks: {tasks}")


def _validity_lines(space: UserSpace) -> list[str]:
    """What the space file's [validity] says, in words."""
    from lapt.spaces.validity import RuleValidity, TableValidity

    validity = space.validity
    if validity is None:
        return ["validity: every op combination is an architecture"]
    lines = []
    if validity.optional:
        names = ", ".join(space.layers[i].name for i in sorted(validity.optional))
        lines.append(f"validity: optional layers {names} (absent op {validity.absent!r}, left out from the end only)")
    rules = validity if isinstance(validity, RuleValidity) else None
    forbids = [f for f in rules.forbids if "forbid[" in f.reason] if rules is not None else []
    if forbids:
        lines.append(f"validity: {len(forbids)} forbidden combination(s)")
    for rule in rules.count_rules if rules is not None else ():
        lines.append(f"validity: {rule.text} ({rule.where})")
    if isinstance(validity, TableValidity):
        lines.append(f"validity: table only ({validity.rows:,} candidates)")
    return lines
