"""``lapt run``: the whole method on a target task, with a progress bar and a run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lapt.cli.common import add_llm_options, add_run_options, announce_offline, llm_settings, run_values


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser("run", help="transfer principles from source task(s) and search a target task")
    add_run_options(p)
    add_llm_options(p)
    p.add_argument("--run-dir", metavar="DIR", help="where to write the run (default: a new folder under ./runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-trace", action="store_true", help="do not write trace.jsonl (the decision trace)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="if --run-dir holds this run (same settings and code), continue it from its last checkpoint",
    )
    p.add_argument(
        "--principles",
        metavar="FILE",
        help="start from these principles instead of learning: a principles.json of `lapt learn --out`, a library "
        "export, or the id of a stored set (`lapt principles list`); sets from another space are transferred",
    )
    p.add_argument(
        "--store", metavar="PATH", help="principle library (default: $LAPT_PRINCIPLE_STORE or the user data dir)"
    )
    from lapt.cli.train_options import add_train_options

    add_train_options(p)
    p.add_argument("--no-store", action="store_true", help="do not add this run's principle sets to the library")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate everything, then run; print where the run went and its result."""
    from lapt.agents.prompts import load_prompts
    from lapt.api import execute, resolve_settings
    from lapt.cli.resume_cmd import precheck_resume
    from lapt.errors import UserError
    from lapt.principles_file import resolve_principles
    from lapt.run_dir import RunDirectory, default_run_dir

    if args.resume and not args.run_dir:
        raise UserError("--resume needs --run-dir (the folder of the run to continue)")
    llm = llm_settings(args, announce=False)
    values = run_values(args)
    from lapt.cli.train_options import train_settings
    from lapt.evaluator_choice import choose_evaluator
    from lapt.spaces import get_space

    values["evaluator"], values["evaluator_path"] = choose_evaluator(get_space(args.space), args.evaluator)
    values["train"] = train_settings(args, get_space(args.space), values["evaluator"])
    if llm is not None:
        values |= {"reasoner": "llm", "llm": llm.public()}
    principles = None
    if args.principles:
        principles, transfer_report = resolve_principles(args.principles, get_space(args.space), args.store)
        for line in transfer_report:
            print(f"lapt: principles transferred: {line}", file=sys.stderr)
        values["principles_from"] = principles.source
    settings, space = resolve_settings(**values)
    # Bad prompt overrides are refused here, before any other output (the run loads them again).
    prompts = load_prompts(Path(settings.prompts_dir) if settings.prompts_dir else None)
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir()
    if args.resume and RunDirectory(run_dir).holds_run():
        precheck_resume(run_dir, settings, principles, prompts.hashes)
    else:
        RunDirectory(run_dir).check_new()  # --resume on a folder without a run starts one, in an empty folder
    from lapt.tools.executors import check_executor

    check_executor(settings.executor, settings.workers)
    if not args.no_store:
        from lapt.principle_store import PrincipleStore

        PrincipleStore(args.store).check()  # a directory or a device is bad input; unwritable only warns later
    from lapt.tools.executors import check_evaluation

    check_evaluation(settings)  # a broken evaluator function or network builder: one line, before the notice
    if llm is None:
        announce_offline()  # only now: every refusal above is one line on its own
    result = execute(
        settings,
        space,
        llm=llm,
        run_dir=run_dir,
        progress=not args.quiet,
        initial_principles=principles,
        resume=args.resume,
        trace=not args.no_trace,
        store=False if args.no_store else args.store,
    )
    return report(result)


def metric_text(settings: Any, val: float, test: float | None) -> str:
    """``val=... test=...`` as the run's table has them: a test-only benchmark shows its one metric, and a
    lower-is-better metric says so."""
    from lapt.spaces import get_space
    from lapt.tables import table_for

    space = get_space(settings.space)
    table = table_for(space) if settings.evaluator == "table" else None
    direction = "" if space.higher_is_better else "  (lower is better)"
    if table is not None and table.selection == "test":
        return f"test={val:.4f} (the benchmark's only metric: selection uses it){direction}"
    return f"val={val:.4f}  test={'n/a' if test is None else f'{test:.3f}'}{direction}"


def report(result: Any) -> int:
    """Print where the run went and its result (also used by ``lapt resume``).

    A degraded run (an agent without a valid answer, a fallback taken) says so on the last line.
    """
    s = result.summary
    best = s["best"]
    print(f"run directory: {result.run_dir}")
    if best is None:
        errors = [t.error for t in result.trials if t.error]
        first = f"; the first: {errors[0]}" if errors else ""
        _degraded(s)
        print(f"lapt: error: no successful evaluation: {s['evaluations']} evaluation(s), all failed{first}",
              file=sys.stderr)
        return 1
    where = f"evaluation {best['index'] + 1} of {s['evaluations']}"
    print(f"best: {best['arch']}  {metric_text(result.settings, best['val'], best['test'])}  ({where})")
    if "evals_to_optimum" in s:
        reach = f"evaluations to the optimum: {s['evals_to_optimum']}  to a top-0.1% cell: {s['evals_to_top0.1%']}"
        print(reach)
    u = s["usage"]
    failed = f" ({s['adaptations_failed']} without new principles)" if s.get("adaptations_failed") else ""
    outside = f"  outside the region: {s['outside_region']}" if result.settings.escape else ""
    print(
        f"masks: {len(result.masks)}  adaptations: {s['adaptations']}{failed}{outside}  "
        f"LLM calls: {u['llm_calls']}  tokens: {u['input_tokens'] + u['output_tokens']}"
    )
    _degraded(s)
    return 0


def _degraded(summary: dict[str, Any]) -> None:
    reasons = summary.get("degraded") or []
    if reasons:
        print(f"DEGRADED: {'; '.join(reasons)}")
