"""Write ``macro_table.csv``, the synthetic benchmark of ``macro_space.toml``, and record its sha256.

Usage::

    python examples/macro_space/make_table.py           # (re)write the CSV, update [table].sha256
    python examples/macro_space/make_table.py --check   # exit 1 if the committed files are stale

The table holds every architecture the space's rules allow, enumerated here by this script's own
reading of them (4 to 6 modules; 1 to 4 modules halve the resolution; 1 to 3 double the channels), so
that the loader, which checks every row against the space file's count rules, cross-checks both. The
formula is deterministic and made up; it only gives the space a structure principles can find. With
``d`` downsamplings, ``w`` channel doublings, ``n`` modules, ``first`` the position (1-based) of the
first downsampling and row number ``k``:

* class_coarse = 70 + 3 d - 1.5 (d - 2)^2 + 2 w + 1.5 n - first + ((7k + 3) mod 10) / 10;
* class_fine = 60 + 2 d - 2 (d - 3)^2 + 3 w - 1.5 (w - 2)^2 + 2 n - 0.5 first + ((11k + 5) mod 10) / 10;
* segment = 50 + 4 - 3 (d - 1)^2 + 1.5 w + n + 0.5 first + ((13k + 1) mod 10) / 10;

each with a test column 0.5 to 1.1 below it. Values are rounded to two decimals. Only the standard
library is used.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPACE_FILE = HERE / "macro_space.toml"
TABLE_FILE = HERE / "macro_table.csv"

MODULE = ("keep", "widen", "down", "down_widen")
SYMBOL = {"keep": "1", "widen": "2", "down": "3", "down_widen": "4", "none": "0"}
DOWN = {"down", "down_widen"}
WIDEN = {"widen", "down_widen"}
TASKS = ("class_coarse", "class_fine", "segment")


def architectures() -> list[tuple[str, ...]]:
    """Every architecture the rules allow, in the space's canonical order (first module most significant)."""
    out = []
    for ops in itertools.product(MODULE, MODULE, MODULE, MODULE, (*MODULE, "none"), (*MODULE, "none")):
        if ops[4] == "none" and ops[5] != "none":
            continue  # modules are left out from the end only
        d = sum(op in DOWN for op in ops)
        w = sum(op in WIDEN for op in ops)
        if 1 <= d <= 4 and 1 <= w <= 3:
            out.append(ops)
    return out


def _scores(ops: tuple[str, ...], k: int) -> dict[str, float]:
    d = sum(op in DOWN for op in ops)
    w = sum(op in WIDEN for op in ops)
    n = sum(op != "none" for op in ops)
    first = next(i for i, op in enumerate(ops, start=1) if op in DOWN)
    return {
        "class_coarse": 70 + 3 * d - 1.5 * (d - 2) ** 2 + 2 * w + 1.5 * n - first + ((7 * k + 3) % 10) / 10,
        "class_fine": 60 + 2 * d - 2 * (d - 3) ** 2 + 3 * w - 1.5 * (w - 2) ** 2 + 2 * n - 0.5 * first
        + ((11 * k + 5) % 10) / 10,
        "segment": 50 + 4 - 3 * (d - 1) ** 2 + 1.5 * w + n + 0.5 * first + ((13 * k + 1) % 10) / 10,
    }


def make_csv() -> str:
    """The CSV text."""
    out = io.StringIO()
    out.write("arch," + ",".join(f"{t},{t}_test" for t in TASKS) + "\n")
    for k, ops in enumerate(architectures()):
        scores = _scores(ops, k)
        cells = []
        for j, task in enumerate(TASKS):
            val = scores[task]
            test = val - 0.5 - ((5 * k + j) % 7) / 10
            cells += [f"{val:.2f}", f"{test:.2f}"]
        # the benchmark's form: a left-out module has no symbol (64-43121-basic has five modules)
        out.write(f"64-{''.join(SYMBOL[op] for op in ops if op != 'none')}-basic," + ",".join(cells) + "\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the table and its recorded sha256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed files instead of writing")
    args = parser.parse_args(argv)
    data = make_csv().encode()
    sha = hashlib.sha256(data).hexdigest()
    space_text = SPACE_FILE.read_text()
    new_space_text = re.sub(r'(?m)^sha256 = "[0-9a-f]{64}"', f'sha256 = "{sha}"', space_text)
    if args.check:
        stale = not TABLE_FILE.exists() or TABLE_FILE.read_bytes() != data or new_space_text != space_text
        print("stale: run make_table.py" if stale else f"ok: {TABLE_FILE.name} sha256 {sha}")
        return 1 if stale else 0
    TABLE_FILE.write_bytes(data)
    SPACE_FILE.write_text(new_space_text)
    rows = data.count(b"\n") - 1
    print(f"wrote {TABLE_FILE.name} ({rows} rows), sha256 {sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
