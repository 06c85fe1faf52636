"""``lapt run``: the whole method on a target task, with a progress bar and a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lapt.cli.common import add_llm_options, add_run_options, llm_settings, run_values


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser("run", help="transfer principles from source task(s) and search a target task")
    add_run_options(p)
    add_llm_options(p)
    p.add_argument("--run-dir", metavar="DIR", help="where to write the run (default: a new folder under ./runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate everything, then run; print where the run went and its result."""
    from lapt.api import execute, resolve_settings
    from lapt.run_dir import RunDirectory, default_run_dir

    llm = llm_settings(args)
    values = run_values(args)
    if llm is not None:
        values |= {"reasoner": "llm", "llm": llm.public()}
    settings, space = resolve_settings(**values)
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir()
    RunDirectory(run_dir).check_new()
    result = execute(settings, space, llm=llm, run_dir=run_dir, progress=not args.quiet)
    s = result.summary
    best = s["best"]
    print(f"run directory: {result.run_dir}")
    if best is None:
        print("no successful evaluation")
        return 0
    test = "n/a" if best["test"] is None else f"{best['test']:.3f}"
    where = f"evaluation {best['index'] + 1} of {s['evaluations']}"
    print(f"best: {best['arch']}  val={best['val']:.4f}  test={test}  ({where})")
    if "evals_to_optimum" in s:
        reach = f"evaluations to the optimum: {s['evals_to_optimum']}  to a top-0.1% cell: {s['evals_to_top0.1%']}"
        print(reach)
    u = s["usage"]
    print(
        f"masks: {len(result.masks)}  adaptations: {s['adaptations']}  LLM calls: {u['llm_calls']}  "
        f"tokens: {u['input_tokens'] + u['output_tokens']}"
    )
    return 0
