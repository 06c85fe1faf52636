"""Measure every architecture of ``digits_space.toml`` with its own evaluator and write ``digits_table.csv``.

Usage::

    python examples/digits_family/make_table.py           # train all 117 architectures on both tasks
    python examples/digits_family/make_table.py --check   # exit 1 if the CSV or its recorded sha256 is stale

It calls ``digits_eval.evaluate`` (the space's ``[evaluator] function``) on every valid architecture, in
the space's canonical order, and records the sha256 of the CSV in the space file. Training runs on one
CPU thread and takes a few minutes. The values are real measurements: rerun on another machine, a few
may differ in the last digit (floating-point kernels differ), which ``--check`` does not retrain to see;
it checks that the CSV holds every architecture once, with both tasks, and matches the recorded hash.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPACE_FILE = HERE / "digits_space.toml"
TABLE_FILE = HERE / "digits_table.csv"
HEADER = "arch,digits,digits_test,few_digits,few_digits_test"


def measure() -> str:
    """The CSV text: every valid architecture, both tasks."""
    sys.path.insert(0, str(HERE))
    from digits_eval import evaluate

    from lapt.spaces.user import load_user_space

    space = load_user_space(SPACE_FILE, read_table=False)  # the table is what this writes
    out = io.StringIO()
    out.write(HEADER + "\n")
    archs = list(space.enumerate())
    for k, g in enumerate(archs, start=1):
        arch = space.describe_genotype(g)
        a, b = evaluate(arch, "digits"), evaluate(arch, "few_digits")
        out.write(f"{space.to_str(g)},{a['val']:.1f},{a['test']:.1f},{b['val']:.1f},{b['test']:.1f}\n")
        print(f"{k}/{len(archs)} {space.to_str(g)} digits {a['val']:.1f} few_digits {b['val']:.1f}", file=sys.stderr)
    return out.getvalue()


def check() -> bool:
    """The CSV hashes to the recorded sha256 and holds every architecture once (loading the space checks it)."""
    from lapt.spaces.user import load_user_space

    recorded = re.search(r'(?m)^sha256 = "([0-9a-f]{64})"', SPACE_FILE.read_text())
    if not TABLE_FILE.exists() or recorded is None:
        return False
    if hashlib.sha256(TABLE_FILE.read_bytes()).hexdigest() != recorded.group(1):
        return False
    space = load_user_space(SPACE_FILE)
    return space.table_data is not None and space.table_data.rows == space.size()


def main(argv: list[str] | None = None) -> int:
    """Measure and write (or with --check, verify) the table and its recorded sha256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed files instead of training")
    args = parser.parse_args(argv)
    if args.check:
        ok = check()
        print(f"ok: {TABLE_FILE.name} matches {SPACE_FILE.name}" if ok else "stale: run make_table.py")
        return 0 if ok else 1
    data = measure().encode()
    sha = hashlib.sha256(data).hexdigest()
    TABLE_FILE.write_bytes(data)
    text = SPACE_FILE.read_text()
    SPACE_FILE.write_text(re.sub(r'(?m)^sha256 = "[0-9a-f]{64}"', f'sha256 = "{sha}"', text))
    rows = len(data.splitlines()) - 1
    print(f"wrote {TABLE_FILE.name} ({rows} rows), sha256 {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
