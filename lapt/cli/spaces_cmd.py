"""``lapt spaces``: the search spaces, their tasks and sizes (built-in, or read from ``--file``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lapt.spaces import SearchSpace


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
    from lapt.tables import TABLES

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
    size = f"{space.size():,} architectures"
    print(f"{label:<8} {space.title}: {len(space.layers)} layers, {len(space.ops)} ops, {size}")
    print(f"         ops: {', '.join(space.ops)}")
    print(f"         tasks: {', '.join(space.tasks) if space.tasks else '(none: evaluate by training)'}")


def _print_user_space(space: SearchSpace) -> None:
    from lapt.spaces.user import UserSpace

    if not isinstance(space, UserSpace):  # pragma: no cover - get_space("file:...") always builds one
        raise TypeError(f"{space.name} is not a user space")
    _print_header(space.name, space)
    print(f"         kind: {space.kind}; layers: {', '.join(space.layer_names)}")
    print(f"         file: {space.source} (sha256 {space.spec_sha256[:12]})")
    fmt = space.arch_format
    example = space.to_str(space.from_index(space.size() - 1))
    print(f"         arch format: {fmt.format}, e.g. {example}")
    data = space.table_data
    if data is None:
        print("         table: - (no [table] section: nothing can evaluate its architectures yet)")
        return
    coverage = "dense" if data.rows == space.size() else f"sparse, {data.rows / space.size():.1%} of the space"
    tasks = ", ".join(t + (" (+test)" if t in data.test else "") for t in space.tasks if t in data.val)
    print(f"         table: {data.path.name}, {data.rows:,} rows ({coverage}), sha256 {data.sha256[:12]}")
    print(f"         table tasks: {tasks}")
