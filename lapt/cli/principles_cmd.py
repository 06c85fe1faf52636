"""``lapt principles list|show|export|import``: the local library of learned design principles."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import stat
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lapt.cli.printable import printable

if TYPE_CHECKING:
    from lapt.principles.store import PrincipleStore, StoredPrinciples


def register(sub: Any) -> None:
    """Add the ``principles`` sub-command and its actions."""
    p = sub.add_parser("principles", help="list, show, export and import stored design principles")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        metavar="PATH",
        help="principle store (default: $LAPT_PRINCIPLE_STORE, else the user data directory)",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", parents=[store], help="one line per stored principle set")
    ls.add_argument("--space", help="only sets learned on this space")
    ls.set_defaults(func=run_list)
    show = actions.add_parser("show", parents=[store], help="a principle set and its provenance")
    show.add_argument("id", help="id from 'lapt principles list' (a unique prefix is enough)")
    show.set_defaults(func=run_show)
    export = actions.add_parser("export", parents=[store], help="write a principle set as JSON")
    export.add_argument("id")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(func=run_export)
    imp = actions.add_parser("import", parents=[store], help="add a principle set exported by lapt")
    imp.add_argument("file", help="JSON file written by 'lapt principles export' ('-' for stdin)")
    imp.set_defaults(func=run_import)


def _store(args: argparse.Namespace) -> PrincipleStore:
    from lapt.principles.store import PrincipleStore

    return PrincipleStore(args.store)


def run_list(args: argparse.Namespace) -> int:
    """Print one line per record, oldest first."""
    store = _store(args)
    records = store.list(args.space)
    if not records:
        where = f" for space {args.space!r}" if args.space else ""
        print(printable(f"no principle sets{where} in {store.path}"))
        return 0
    print(f"{'id':<12}  {'created (UTC)':<16}  {'space':<10} {'n':>3}  {'reasoner':<18} source tasks / parent")
    for r in records:
        prov = r.provenance
        created = prov.created.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        who = prov.reasoner + (f"/{prov.model}" if prov.model else "")
        tail = ",".join(prov.source_tasks) or "-"
        if prov.parent_id:
            tail += f"  (adapts {prov.parent_id})"
        n = len(r.principle_set.principles)
        print(printable(f"{r.id:<12}  {created:<16}  {prov.space:<10} {n:>3}  {who:<18} {tail}"))
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print a record for humans (control characters in its text shown as escapes)."""
    print(format_record(_store(args).get(args.id)))
    return 0


def format_record(r: StoredPrinciples) -> str:
    """A readable view of a stored principle set and its provenance."""
    prov, pset = r.provenance, r.principle_set
    prompts = ", ".join(f"{k}={v[:12]}" for k, v in sorted(prov.prompt_hashes.items())) or "-"
    lines = [
        f"id        {r.id}",
        f"space     {prov.space}",
        f"tasks     {', '.join(prov.source_tasks) or '-'}",
        f"reasoner  {prov.reasoner or '-'}" + (f" (model {prov.model})" if prov.model else ""),
        f"created   {prov.created.isoformat()}",
        f"run       {prov.run_id or '-'}",
        f"parent    {prov.parent_id or '-'}",
        f"prompts   {prompts}",
        f"set       version {pset.version}: {pset.source}",
        f"principles ({len(pset.principles)}):",
    ]
    for k, p in enumerate(pset.principles, start=1):
        scope = p.layer or "global"
        lines.append(f"  {k}. [{scope}] {p.statement} (confidence {p.confidence:.2f})")
        if p.favour or p.avoid:
            lines.append(f"     favour: {', '.join(p.favour) or '-'}; avoid: {', '.join(p.avoid) or '-'}")
        if p.evidence:
            lines.append(f"     evidence: {p.evidence}")
    return "\n".join(printable(line) for line in lines)  # a shared export may hold terminal escapes


def run_export(args: argparse.Namespace) -> int:
    """Write the record as JSON to stdout or, atomically, to a file.

    On stdout the JSON is ASCII (every other character as a ``\\u`` escape, the same document), so a
    terminal never receives a control character from a statement; in a file it is UTF-8.
    """
    doc = _store(args).export(args.id)
    if not args.output:
        print(json.dumps(doc, indent=2, ensure_ascii=True))
        return 0
    target = Path(args.output)
    write_export(target, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(printable(f"wrote {target}"))
    return 0


def write_export(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temporary file renamed over it, so a reader never sees half.

    Only a regular file (or a new name) is written: the rename would replace a FIFO, a device node
    (``-o /dev/null`` as root) or a symbolic link by a regular file, so those are refused instead. The
    file gets the permissions any new file of this user gets (the umask), or keeps those of the file it
    replaces: a principle export holds no secret.

    Raises:
        UserError: the target is not a regular file, or cannot be written (a bad path).
        EnvironmentFailure: the disk is full or the machine failed while writing.
    """
    from lapt.errors import UserError, environment_failure
    from lapt.files.inputs import kind_of

    def failed(e: OSError) -> Exception:  # the machine (exit 1) or a bad path (exit 2)
        bad_path = UserError(f"cannot write {target}: {e.strerror or e}")
        return environment_failure(e, f"cannot write {target}") or bad_path

    try:
        st: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise failed(e) from e
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise UserError(f"-o {target}: is a symbolic link; give the file itself (the export would replace the link)")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UserError(f"-o {target}: is {kind_of(st.st_mode)}, not a file")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any new file
    except OSError as e:
        raise failed(e) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if st is not None:
                os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise failed(e) from e


def run_import(args: argparse.Namespace) -> int:
    """Validate a JSON export and add it to the store; print its id."""
    import sys

    from lapt.errors import UserError
    from lapt.files.inputs import MB, read_input
    from lapt.principles.files import MAX_PRINCIPLES_FILE_BYTES

    if args.file == "-":
        data = sys.stdin.buffer.read(MAX_PRINCIPLES_FILE_BYTES + 1)
        if len(data) > MAX_PRINCIPLES_FILE_BYTES:
            raise UserError(f"stdin: more than the {MAX_PRINCIPLES_FILE_BYTES // MB} MB a principle export can be")
    else:
        data = read_input(Path(args.file), "import", MAX_PRINCIPLES_FILE_BYTES)
    rid = _store(args).import_(data, origin=args.file)
    print(rid)
    return 0
