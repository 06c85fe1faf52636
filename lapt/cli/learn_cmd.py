"""``lapt learn``: learn principles from source task(s) and show the refined space they imply."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lapt.cli.common import add_llm_options, add_run_options, llm_settings, sources
from lapt.cli.printable import printable


def register(sub: Any) -> None:
    """Add the ``learn`` sub-command."""
    p = sub.add_parser("learn", help="learn design principles from source task(s) and print them")
    add_run_options(p, target=False)
    add_llm_options(p)
    p.add_argument("--out", metavar="DIR", help="save principles.json and mask.json in DIR")
    p.add_argument(
        "--store", metavar="PATH", help="principle library (default: $LAPT_PRINCIPLE_STORE or the user data dir)"
    )
    p.add_argument("--no-store", action="store_true", help="do not add the learned set to the library")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Learn, refine, print, optionally save: the agents alone (no evaluator, no executor, no target)."""
    from lapt.agents.prompts import load_prompts
    from lapt.cli.common import announce_offline
    from lapt.errors import UserError
    from lapt.files.outputs import check_writable_dir
    from lapt.graph.assembly import build_agents, make_reasoner, source_data, source_table
    from lapt.principles.store import PrincipleStore
    from lapt.runs.config import space_defaults
    from lapt.spaces import get_space
    from lapt.transfer.masks import mask_summary, to_spec

    llm = llm_settings(args, announce=False)
    srcs = sources(args)
    if not srcs:
        raise UserError("give at least one --source task")
    twice = next((t for i, t in enumerate(srcs) if t in srcs[:i]), None)
    if twice is not None:
        raise UserError(f"--source: source task {twice!r} is given twice")
    if args.top_k < 1 or (args.max_ops is not None and args.max_ops < 1):
        raise UserError("--top-k and --max-ops must be >= 1")
    space = get_space(args.space)
    table = source_table(space)
    for task in srcs:
        table.check_task(task)
    max_ops = args.max_ops or space_defaults(space)["max_ops"]
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:  # where the result goes is checked before minutes of learning
        check_writable_dir(out_dir, "--out")
    store = None if args.no_store else PrincipleStore(args.store)
    if store is not None:
        from lapt.principles.store import StoreUnavailable

        try:
            store.check_usable()
        except StoreUnavailable as e:
            raise StoreUnavailable(f"{e} (--no-store learns without storing)") from e
    prompts = load_prompts(Path(args.prompts) if args.prompts else None)
    if llm is None:
        announce_offline()
    reasoner = make_reasoner(llm)
    agents = build_agents(reasoner, prompts, args.top_k)
    learned = agents.learner(space, source_data(space, srcs))
    if learned.value is None:
        raise UserError(f"the learner gave no valid principles: {learned.reply.error}")
    pset = learned.value
    print(printable(f"# principles learned on {space.name} from {', '.join(srcs)} ({pset.reasoner})"))
    for p in pset.principles:  # an LLM's words: printed with control characters escaped
        print(printable(f"- [{p.confidence:.2f}] {p.statement}"))
    refined = agents.refiner(space, pset, max_ops, "a new task")
    if refined.value is None:
        raise UserError(f"the refiner gave no valid mask: {refined.reply.error}")
    spec = to_spec(space, refined.value)
    print(f"\n# refined space: {space.size(spec):,} of {space.size():,} architectures")
    print(printable(mask_summary(space, spec), keep_newlines=True))
    if store is not None:
        from lapt.graph.run import principle_provenance

        kind = "llm" if llm is not None else "offline"
        provenance = principle_provenance(pset, kind, reasoner.model, space, prompts.hashes, "lapt-learn")
        print(f"\nstored in the principle library as {store.add(pset, provenance)} ({store.path})")
    if out_dir is not None:
        _save(out_dir, pset.model_dump_json(indent=2) + "\n", json.dumps(refined.value.model_dump(), indent=2) + "\n")
        print(f"\nsaved {out_dir / 'principles.json'} and {out_dir / 'mask.json'}")
    return 0


def _save(out_dir: Path, principles: str, mask: str) -> None:
    """Write principles.json and mask.json, each whole or not at all; EnvironmentFailure if the disk refuses."""
    from lapt.errors import EnvironmentFailure, environment_failure
    from lapt.runs.directory import atomic_write

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / "principles.json", principles)
        atomic_write(out_dir / "mask.json", mask)
    except OSError as e:
        for tmp in out_dir.glob(".*.tmp"):  # what a failed atomic write leaves
            tmp.unlink(missing_ok=True)
        raise environment_failure(e, f"cannot write --out {out_dir}") or EnvironmentFailure(
            f"cannot write --out {out_dir}: {e.strerror or e}"
        ) from e
