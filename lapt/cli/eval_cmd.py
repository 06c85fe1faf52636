"""``lapt eval SPACE ARCH --task T``: evaluate one architecture."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the ``eval`` sub-command."""
    p = sub.add_parser("eval", help="evaluate one architecture by table lookup (or training)")
    p.add_argument("space", help="search space: nb201, tnb101, darts, or a .toml space file (file:PATH)")
    p.add_argument("arch", help="architecture string in the benchmark's format")
    p.add_argument("--task", help="task name as the benchmark names it (e.g. cifar10, class_scene)")
    p.add_argument("--table", help="benchmark table (default: the space's own; nb201-12epoch for low fidelity)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decode the arch, look it up, print the metrics."""
    from lapt.errors import UserError
    from lapt.spaces import get_space
    from lapt.tools.evaluation import TabularEvaluator

    space = get_space(args.space)
    genotype = space.from_str(args.arch)
    evaluator = TabularEvaluator.for_space(space, args.table)
    if not args.task:
        raise UserError(f"--task is required (tasks of {space.name}: {', '.join(evaluator.table.tasks)})")
    evaluator.table.check_task(args.task)
    out = evaluator.evaluate(space, genotype, args.task)
    if args.json:
        print(json.dumps({"space": space.name, "arch": space.to_str(genotype), "task": args.task, **out.model_dump()}))
    else:
        test = "n/a (benchmark publishes validation only)" if out.test is None else f"{out.test:.3f}"
        print(f"{space.to_str(genotype)}  task={args.task}  val={out.val:.4f}  test={test}")
    return 0
