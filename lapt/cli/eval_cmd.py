"""``lapt eval SPACE ARCH --task T``: evaluate one architecture."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the ``eval`` sub-command."""
    from lapt.cli.train_options import add_train_options

    p = sub.add_parser("eval", help="evaluate one architecture by table lookup or by training it")
    p.add_argument("space", help="search space: nb201, tnb101, darts, or a .toml space file (file:PATH)")
    p.add_argument("arch", help="architecture string in the benchmark's format")
    p.add_argument("--task", help="task name as the benchmark names it (e.g. cifar10, class_scene)")
    p.add_argument("--evaluator", default="table", choices=["table", "train"], help="table lookup or real training")
    p.add_argument("--table", help="benchmark table (default: the space's own; nb201-12epoch for low fidelity)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decode the arch, look it up (or train it), print the metrics."""
    from lapt.cli.train_options import train_settings
    from lapt.errors import UserError
    from lapt.spaces import get_space
    from lapt.tools.evaluation import Outcome, TabularEvaluator

    space = get_space(args.space)
    genotype = space.from_str(args.arch)
    train = train_settings(args, space)  # refuses training options given with the table evaluator
    out: Outcome
    if train is not None:
        from lapt.tools.train_adapter import make_training_evaluator

        if args.table:
            raise UserError("--table names a benchmark table: it has no use with --evaluator train")
        task = args.task or train.dataset
        out = make_training_evaluator(train, space.name).evaluate(space, genotype, task)
    else:
        evaluator = TabularEvaluator.for_space(space, args.table)
        if not args.task:
            raise UserError(f"--task is required (tasks of {space.name}: {', '.join(evaluator.table.tasks)})")
        task = evaluator.table.check_task(args.task)
        out = evaluator.evaluate(space, genotype, task)
        if out.status != "ok":  # a sparse user table without this architecture: the input is the problem
            raise UserError(out.error or "evaluation failed")
    if args.json:
        print(json.dumps({"space": space.name, "arch": space.to_str(genotype), "task": task, **out.model_dump()}))
    elif out.status != "ok":
        print(f"{space.to_str(genotype)}  task={task}  FAILED: {out.error}")
        return 1
    else:
        test = "n/a (benchmark publishes validation only)" if out.test is None else f"{out.test:.3f}"
        extras = "  ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in out.extras.items()
            if k in ("params", "flops", "device", "peak_memory_mb")
        )
        cost = f"  train_s={out.cost_s:.1f}" if args.evaluator == "train" else ""
        print(f"{space.to_str(genotype)}  task={task}  val={out.val:.4f}  test={test}{cost}  {extras}".rstrip())
    return 0
