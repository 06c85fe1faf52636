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
    from lapt.cli.printable import printable
    from lapt.errors import UserError
    from lapt.principles.files import resolve_principles
    from lapt.runs.directory import RunDirectory, default_run_dir

    if args.resume and not args.run_dir:
        raise UserError("--resume needs --run-dir (the folder of the run to continue)")
    llm = llm_settings(args, announce=False)
    values = run_values(args)
    from lapt.cli.train_options import train_settings
    from lapt.runs.evaluator_choice import choose_evaluator
    from lapt.spaces import get_space

    values["evaluator"], values["evaluator_path"] = choose_evaluator(get_space(args.space), args.evaluator)
    values["train"] = train_settings(args, get_space(args.space), values["evaluator"])
    if llm is not None:
        values |= {"reasoner": "llm", "llm": llm.public()}
    principles = None
    if args.principles:
        principles, transfer_report = resolve_principles(args.principles, get_space(args.space), args.store)
        for line in transfer_report:
            print(printable(f"lapt: principles transferred: {line}"), file=sys.stderr)  # quotes statements
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

    check_executor(settings.executor, settings.workers, settings.eval_timeout)
    if not args.no_store:
        from lapt.principles.store import PrincipleStore

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
    from lapt.cli.run_report import report

    return report(result)


def precheck_resume(run_dir: Path, settings: Any, principles: Any, prompt_hashes: dict[str, str]) -> None:
    """For ``lapt run --resume``: refuse a folder holding another run before anything starts.

    The same check runs again under the folder's lock when the run opens; this one only makes the
    refusal come before any other output.
    """
    from lapt.runs.directory import RunDirectory
    from lapt.runs.identity import check_same_run, run_config

    w = RunDirectory(run_dir)
    if w.holds_run():
        check_same_run(w.read_config(), run_config(settings, prompt_hashes, principles), run_dir)
