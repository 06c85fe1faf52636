"""``lapt bench`` (the paper's protocol against baselines) and ``lapt report`` (redraw a bench's report)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from lapt.cli.common import add_llm_options, llm_settings
from lapt.errors import UserError

MAX_SEEDS = 1_000
"""Seeds per method and pair: the paper reports 10; a thousand already means days of LLM runs."""


def register(sub: Any) -> None:
    """Add the ``bench`` and ``report`` sub-commands."""
    from lapt.experiments.plan import DEFAULT_METHODS, METHODS

    p = sub.add_parser(
        "bench",
        help="LAPT against REA, random search and an oracle region, on the same seeds, with tables and plots",
        description="Run LAPT (with and without adaptation), REA and random search in the full space, and REA in "
        "the best region of the allowed size (a ceiling), on every transfer pair and seed; write results.csv, "
        "curves.json, summary.md and plots to the bench directory.",
    )
    p.add_argument(
        "--space",
        default="nb201",
        help="a space with a benchmark table: nb201, tnb101, or a space file (.toml) with a [table] (default nb201)",
    )
    p.add_argument(
        "--source",
        action="append",
        metavar="TASK",
        help="source task(s), transferred to every other task (default: jigsaw on tnb101, all ordered pairs "
        "elsewhere); repeat or comma-separate for multi-source learning",
    )
    p.add_argument("--target", action="append", metavar="TASK", help="only these target task(s) (repeatable)")
    p.add_argument("--pair", action="append", metavar="SRC:TGT", help="run exactly these pairs (SRC may be a+b)")
    p.add_argument(
        "--allow-same-task",
        action="store_true",
        help="let a pair learn its principles on its target (--pair t:t; a single-task space's only pair): its "
        "results are labelled 'learned on target', not a transfer",
    )
    p.add_argument("--leave-one-out", action="store_true", help="each target learns principles from all other tasks")
    p.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated subset of {', '.join(METHODS)} (default: all but lapt-offline, which --llm adds: "
        "LAPT with the offline miner on the same seeds)",
    )
    p.add_argument("--seeds", type=int, default=10, metavar="N", help="N seeds for every method (default 10)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="K",
        help="the seeds are K..K+N-1 (default 0); another K gives an independent repeat of the same bench",
    )
    p.add_argument("--budget", type=int, metavar="N", help="evaluations per run (default 100 on nb201, 50 elsewhere)")
    p.add_argument(
        "--max-ops", type=int, metavar="K", help="max ops per layer of refined and oracle regions (default: space's)"
    )
    p.add_argument("--top-k", type=int, default=50, help="source architectures shown to the learner")
    p.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes (default: one per core)"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="bench directory (default: a new folder under ./benches); the same command on the DIR of an "
        "interrupted bench continues it",
    )
    p.add_argument(
        "--llm-cache",
        metavar="PATH",
        help="SQLite response cache for --llm (default DIR/llm_cache.sqlite; reuse one to replay a bench for free)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_llm_options(p)
    p.set_defaults(func=bench)

    r = sub.add_parser("report", help="regenerate summary.md and the plots of a bench from its data files")
    r.add_argument("dir", metavar="DIR", help="a bench directory (holds results.csv and curves.json)")
    r.set_defaults(func=report)


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def build_config(args: argparse.Namespace, llm: Any, out: Path) -> Any:
    """Validate the options into a BenchConfig; UserError (exit 2) on the first problem.

    ``llm`` (LLMSettings or None) only adds the reasoner's public settings and the cache path, so a
    config built with None already checks every other option.
    """
    from lapt.experiments.oracle import check_region_count
    from lapt.experiments.plan import (
        DEFAULT_BUDGET,
        DEFAULT_METHODS,
        LAPT_METHODS,
        OTHER_BUDGET,
        BenchConfig,
        make_pairs,
        parse_methods,
    )
    from lapt.runs.config import MAX_SEED
    from lapt.spaces import get_space
    from lapt.tables.registry import table_for
    from lapt.version import __version__

    space = get_space(args.space)
    table = table_for(space)
    if table is None:
        raise UserError(
            f"bench needs a space with a benchmark table: {space.name} has none (nb201, tnb101, or a space file "
            "with a [table]); evaluate it with `lapt run --evaluator ...` instead"
        )
    budget = DEFAULT_BUDGET.get(space.name, OTHER_BUDGET) if args.budget is None else args.budget
    if budget < 1:
        raise UserError(f"--budget must be >= 1, got {budget}")
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UserError(f"--seeds must be in [1, {MAX_SEEDS:,}], got {args.seeds}")
    if args.first_seed < 0:
        raise UserError(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.first_seed + args.seeds - 1 > MAX_SEED:
        raise UserError(
            f"--first-seed {args.first_seed} with --seeds {args.seeds}: the last seed must be <= {MAX_SEED} "
            "(a run's seed is stored as a signed 64-bit integer)"
        )
    if args.workers is None:
        from lapt.tools.executors.base import available_cores

        args.workers = available_cores()
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.max_ops is not None and args.max_ops < 1:
        raise UserError(f"--max-ops must be >= 1, got {args.max_ops}")
    if args.top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {args.top_k}")
    if args.prompts and not Path(args.prompts).is_dir():
        raise UserError(f"--prompts {args.prompts}: not a directory")
    methods = parse_methods(args.methods)
    if llm is not None and "lapt" in methods and args.methods == ",".join(DEFAULT_METHODS):
        methods = parse_methods(",".join([*methods, "lapt-offline"]))  # the model against the miner, same seeds
    max_ops = args.max_ops or space.search_defaults().max_ops
    if "rea-oracle" in methods:
        check_region_count([layer.ops for layer in space.layers], max_ops)
    pairs = make_pairs(
        table.tasks,
        space.name,
        _split(args.source),
        _split(args.target),
        list(args.pair or []),
        args.leave_one_out,
        need_sources=any(m in LAPT_METHODS for m in methods),
        allow_same_task=args.allow_same_task,
    )
    cache = None
    if llm is not None:
        cache = str(Path(args.llm_cache) if args.llm_cache else out / "llm_cache.sqlite")
    return BenchConfig(
        space=getattr(space, "ref", space.name),
        table=table.name,
        pairs=pairs,
        methods=methods,
        seeds=list(range(args.first_seed, args.first_seed + args.seeds)),
        budget=budget,
        max_ops=max_ops,
        top_k=args.top_k,
        reasoner="offline" if llm is None else "llm",
        llm=None if llm is None else llm.public(),
        prompts_dir=args.prompts,
        llm_cache=cache,
        lapt_version=__version__,
        allow_same_task=args.allow_same_task,
    )


def _out_dir(args: argparse.Namespace) -> Path:
    from lapt.runs.directory import default_run_dir

    out = Path(args.out) if args.out else default_run_dir(Path("benches"))
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    return out


def warn_oversubscribed(workers: int) -> None:
    """Say so when ``--workers`` asks for more processes than this machine has cores.

    Allowed (a bench's table lookups are light, and results do not depend on the worker count), but
    the processes then share the cores and the bench is no faster, often slower, than one per core.
    """
    from lapt.tools.executors.base import available_cores

    cores = available_cores()
    if workers > cores:
        print(
            f"lapt: warning: --workers {workers} exceeds the {cores} cores of this machine: the runs share them "
            f"(same results, no faster than --workers {cores})",
            file=sys.stderr,
        )


def _open_journal(out: Path, config: Any) -> Any:
    """The bench's journal in ``out`` (new, or the one of an interrupted bench of the same settings).

    Called with the folder's lock held, so that what is read here cannot change before the bench writes.
    """
    from lapt.experiments.files import CURVES, RESULTS
    from lapt.experiments.journal import BenchJournal
    from lapt.runs.identity import source_sha256

    if (out / RESULTS).exists() or (out / CURVES).exists():
        raise UserError(f"--out {out} already holds a bench (use `lapt report {out}` to redraw it, or a new --out)")
    return BenchJournal(out, config, source_sha256())


def bench(args: argparse.Namespace) -> int:
    """Validate everything, claim the bench directory, run every job not yet in its journal, write the
    bench directory and print the summary's location."""
    from lapt.cli.common import announce_offline
    from lapt.experiments.files import SUMMARY
    from lapt.experiments.runner import run_bench
    from lapt.files.outputs import check_writable_dir
    from lapt.runs.lock import RunLock

    out = _out_dir(args)
    llm = llm_settings(args, announce=False)
    config = build_config(args, llm, out)
    # Every pair's run settings are checked here, before any worker starts.
    from lapt.experiments.methods import settings_for
    from lapt.experiments.plan import LAPT_METHODS, Job, space_label

    lapt_methods = [m for m in config.methods if m in LAPT_METHODS]
    for pair in config.pairs if lapt_methods else ():
        settings_for(Job(lapt_methods[0], pair, config.seeds[0]), config, llm)
    check_writable_dir(out, "--out")
    created = not out.exists()
    # One bench per folder: a second one on the same --out is refused here, before it reads anything.
    with RunLock(out, what="--out"):
        try:
            journal = _open_journal(out, config)
        except UserError:
            if created:  # nothing of a bench was written: leave no folder behind
                shutil.rmtree(out, ignore_errors=True)
            raise
        try:
            if llm is None:
                announce_offline()  # only now: every refusal above is one line on its own
            warn_oversubscribed(args.workers)
            n_jobs = len(config.pairs) * len(config.methods) * len(config.seeds)
            print(
                f"lapt bench: {space_label(config.space)}, {len(config.pairs)} pair(s) x {len(config.methods)} "
                f"method(s) x {len(config.seeds)} seed(s) = {n_jobs} runs, budget {config.budget}, "
                f"{args.workers} worker(s)",
                file=sys.stderr,
            )
            if journal.continued:
                print(
                    f"lapt bench: continuing the bench in {out}: {len(journal.done)} of {n_jobs} runs are done",
                    file=sys.stderr,
                )
            start = time.perf_counter()
            curves = run_bench(config, out, llm=llm, workers=args.workers, progress=not args.quiet, journal=journal)
        finally:
            journal.close()
    print(f"bench directory: {out}")
    print(f"summary: {out / SUMMARY}  (runs {curves.wall_s:.1f} s, total {time.perf_counter() - start:.1f} s)")
    return 0


def report(args: argparse.Namespace) -> int:
    """Regenerate summary.md and the plots from results.csv and curves.json."""
    from lapt.experiments.files import SUMMARY
    from lapt.experiments.report import write_report

    out = Path(args.dir)
    write_report(out)
    print(f"rewrote {out / SUMMARY} and the plots")
    return 0
