"""``lapt spaces``: the search spaces, their tasks and sizes."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``spaces`` sub-command."""
    p = sub.add_parser("spaces", help="list search spaces, their tasks and sizes")
    p.add_argument("--code", metavar="SPACE", help="print the code description of SPACE shown to agents")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one block per space."""
    from lapt.spaces import builtin_space_names, get_space
    from lapt.tables import TABLES

    if args.code:
        print(get_space(args.code).describe_code())
        return 0
    for name in builtin_space_names():
        space = get_space(name)
        tables = [t for t, (s, _, _) in TABLES.items() if s == name]
        size = f"{space.size():,} architectures"
        print(f"{name:<8} {space.title}: {len(space.layers)} layers, {len(space.ops)} ops, {size}")
        print(f"         ops: {', '.join(space.ops)}")
        print(f"         tasks: {', '.join(space.tasks) if space.tasks else '(none: evaluate by training)'}")
        print(f"         tables: {', '.join(tables) if tables else '-'}")
    return 0
