"""``lapt eval SPACE ARCH --task T``: evaluate one architecture."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lapt.cli.printable import printable


def register(sub: Any) -> None:
    """Add the ``eval`` sub-command."""
    from lapt.cli.train_options import add_train_options

    p = sub.add_parser("eval", help="evaluate one architecture by table lookup, by training it, or with your code")
    p.add_argument("space", help="search space: nb201, tnb101, darts, or a .toml space file (file:PATH)")
    p.add_argument("arch", help="architecture string in the benchmark's format")
    p.add_argument("--task", help="task name as the benchmark names it (e.g. cifar10, class_scene)")
    p.add_argument(
        "--evaluator",
        metavar="EVALUATOR",
        help="table, train, python:MODULE:FUNCTION or python (the space file's function); default: the space's "
        "table, else the evaluator its file names",
    )
    p.add_argument("--table", help="benchmark table (default: the space's own; nb201-12epoch for low fidelity)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decode the arch, look it up (or train it, or call the user's function), print the metrics."""
    from lapt.errors import UserError
    from lapt.runs.evaluator_choice import choose_evaluator
    from lapt.spaces import get_space
    from lapt.tools.evaluation import Outcome, TabularEvaluator

    space = get_space(args.space)
    genotype = space.from_str(args.arch)
    invalid = space.why_invalid(genotype)
    if invalid is not None:
        raise UserError(f"{args.arch.strip()} is not an architecture of {space.name}: {invalid}")
    evaluator, path = choose_evaluator(space, args.evaluator)
    from lapt.cli.train_options import train_settings

    train = train_settings(args, space, evaluator)  # refuses training options given with another evaluator
    selection = "val"
    out: Outcome
    if train is not None:
        from lapt.tools.train_adapter import make_training_evaluator

        if args.table:
            raise UserError("--table names a benchmark table: it has no use with --evaluator train")
        task = args.task or train.dataset
        out = make_training_evaluator(train, getattr(space, "ref", space.name)).evaluate(space, genotype, task)
    elif evaluator.startswith("python:"):
        from lapt.tools.user_evaluator import FunctionEvaluator

        task = _task(args.task, space.tasks)
        module, _, function = evaluator.removeprefix("python:").partition(":")
        out = FunctionEvaluator(module, function, path).evaluate(space, genotype, task)
    else:
        table_evaluator = TabularEvaluator.for_space(space, args.table)
        if not args.task:
            raise UserError(f"--task is required (tasks of {space.name}: {', '.join(table_evaluator.table.tasks)})")
        task = table_evaluator.table.check_task(args.task)
        selection = table_evaluator.table.selection
        out = table_evaluator.evaluate(space, genotype, task)
        if out.status != "ok":  # a sparse user table without this architecture: the input is the problem
            raise UserError(out.error or "evaluation failed")
    if args.json:
        print(json.dumps({"space": space.name, "arch": space.to_str(genotype), "task": task, **out.model_dump()}))
    elif out.status != "ok":
        print(printable(f"{space.to_str(genotype)}  task={task}  FAILED: {out.error}"))
        return 1
    else:
        extras = "  ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in out.extras.items()
            if k in ("params", "flops", "device", "peak_memory_mb")
        )
        cost = f"  {'train_s' if evaluator == 'train' else 'cost_s'}={out.cost_s:.1f}" if evaluator != "table" else ""
        metrics = _metrics(out, selection, evaluator)
        direction = "" if space.higher_is_better else "  (lower is better)"
        print(printable(f"{space.to_str(genotype)}  task={task}  {metrics}{direction}{cost}  {extras}".rstrip()))
    return 0


def _task(task: str | None, tasks: tuple[str, ...]) -> str:
    """The task given, or the space's only task."""
    from lapt.errors import UserError

    if task:
        return task
    if len(tasks) == 1:
        return tasks[0]
    raise UserError(f"--task is required (tasks: {', '.join(tasks) or 'any name your evaluator knows'})")


def _metrics(out: Any, selection: str, evaluator: str) -> str:
    """``val=... test=...``, saying which metric a benchmark does not publish."""
    from lapt.search.metrics import metric_str

    if selection == "test":
        return f"test={metric_str(out.val)} (the benchmark publishes test only: selection uses it)"
    if out.test is not None:
        return f"val={metric_str(out.val)}  test={metric_str(out.test, 3)}"
    missing = "benchmark publishes validation only" if evaluator == "table" else "the evaluator reports none"
    return f"val={metric_str(out.val)}  test=n/a ({missing})"
