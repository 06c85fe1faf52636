"""``lapt learn``: learn principles from source task(s) and show the refined space they imply."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lapt.cli.common import add_llm_options, add_run_options, llm_settings, sources


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
    """Learn, refine, print, optionally save."""
    from lapt.api import build_context, resolve_settings
    from lapt.cli.common import announce_offline
    from lapt.errors import UserError
    from lapt.masks import mask_summary, to_spec
    from lapt.output_dirs import check_writable_dir
    from lapt.principle_store import PrincipleStore

    llm = llm_settings(args, announce=False)
    srcs = sources(args)
    if not srcs:
        raise UserError("give at least one --source task")
    values: dict[str, Any] = {
        "space": args.space,
        "sources": srcs,
        "target": srcs[0],
        "allow_same_task": True,
        "max_ops": args.max_ops,
        "top_k": args.top_k,
        "prompts_dir": args.prompts,
    }
    if llm is not None:
        values |= {"reasoner": "llm", "llm": llm.public()}
    settings, space = resolve_settings(**values)
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:  # where the result goes is checked before minutes of learning
        check_writable_dir(out_dir, "--out")
    store = None if args.no_store else PrincipleStore(args.store)
    if store is not None:
        from lapt.principle_store import StoreUnavailable

        try:
            store.check_usable()
        except StoreUnavailable as e:
            raise StoreUnavailable(f"{e} (--no-store learns without storing)") from e
    ctx, hashes = build_context(settings, space, llm)
    if llm is None:
        announce_offline()
    learned = ctx.learner(space, ctx.sources())
    if learned.value is None:
        raise UserError(f"the learner gave no valid principles: {learned.reply.error}")
    pset = learned.value
    print(f"# principles learned on {space.name} from {', '.join(srcs)} ({pset.reasoner})")
    for p in pset.principles:
        print(f"- [{p.confidence:.2f}] {p.statement}")
    refined = ctx.refiner(space, pset, settings.max_ops, "a new task")
    if refined.value is None:
        raise UserError(f"the refiner gave no valid mask: {refined.reply.error}")
    spec = to_spec(space, refined.value)
    print(f"\n# refined space: {space.size(spec):,} of {space.size():,} architectures")
    print(mask_summary(space, spec))
    if store is not None:
        from lapt.api import principle_provenance

        provenance = principle_provenance(pset, settings, space, llm, hashes, "lapt-learn")
        print(f"\nstored in the principle library as {store.add(pset, provenance)} ({store.path})")
    if out_dir is not None:
        _save(out_dir, pset.model_dump_json(indent=2) + "\n", json.dumps(refined.value.model_dump(), indent=2) + "\n")
        print(f"\nsaved {out_dir / 'principles.json'} and {out_dir / 'mask.json'}")
    return 0


def _save(out_dir: Path, principles: str, mask: str) -> None:
    """Write principles.json and mask.json, each whole or not at all; EnvironmentFailure if the disk refuses."""
    from lapt.errors import EnvironmentFailure, environment_failure
    from lapt.run_dir import atomic_write

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
