"""Write ``toy_table.csv``, the synthetic benchmark of ``toy_space.toml``, and record its sha256.

Usage::

    python examples/toy_space/make_table.py           # (re)write the CSV, update [table].sha256
    python examples/toy_space/make_table.py --check   # exit 1 if the committed files are stale

The formula is deterministic and made up; it only gives the toy space a structure that design
principles can find. For an architecture with ops ``o1..o4`` on edges 0->1, 0->2, 1->2, 2->3 and row
index ``k`` (mixed radix over the op order none, skip_connect, conv_3x3, first edge most significant):

* if no path from node 0 to node 3 avoids ``none``, every metric is 10.0 (the cell outputs zeros);
* task_a = 60 + sum over edges of (6 for conv_3x3, 2 for skip_connect), except that skip_connect on
  edge 2->3 gives 9; plus the jitter ((7k + 3) mod 10) / 10;
* task_a_test = task_a - 1 + ((5k) mod 7) / 10;
* task_b = 55 + sum over edges of (4 for conv_3x3, 3 for skip_connect), except that skip_connect on
  edge 0->2 gives 8; plus the jitter ((11k + 5) mod 10) / 10.

Values are rounded to two decimals. Only the standard library is used, so the script runs anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import re
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPACE_FILE = HERE / "toy_space.toml"
TABLE_FILE = HERE / "toy_table.csv"

CONV_GAIN = {"task_a": 6.0, "task_b": 4.0}
SKIP_GAIN = {"task_a": 2.0, "task_b": 3.0}
SKIP_BONUS = {"task_a": ("2->3", 9.0), "task_b": ("0->2", 8.0)}
JITTER = {"task_a": (7, 3), "task_b": (11, 5)}


def _reaches_output(edges: list[tuple[int, int]], ops: tuple[str, ...]) -> bool:
    reach = {0}
    for (i, j), op in sorted(zip(edges, ops, strict=True), key=lambda e: e[0][1]):
        if op != "none" and i in reach:
            reach.add(j)
    return max(j for _, j in edges) in reach


def _score(task: str, edge_names: list[str], ops: tuple[str, ...], k: int) -> float:
    total = 60.0 if task == "task_a" else 55.0
    bonus_edge, bonus = SKIP_BONUS[task]
    for edge, op in zip(edge_names, ops, strict=True):
        if op == "conv_3x3":
            total += CONV_GAIN[task]
        elif op == "skip_connect":
            total += bonus if edge == bonus_edge else SKIP_GAIN[task]
    a, b = JITTER[task]
    return total + ((a * k + b) % 10) / 10


def make_csv() -> str:
    """The CSV text, in the space's canonical order."""
    spec = tomllib.loads(SPACE_FILE.read_text())
    edge_names = [layer["edge"] for layer in spec["layers"]]
    edges = [(int(a), int(b)) for a, b in (e.split("->") for e in edge_names)]
    out = io.StringIO()
    out.write("arch,task_a,task_a_test,task_b\n")
    for k, ops in enumerate(itertools.product(*(layer["ops"] for layer in spec["layers"]))):
        if _reaches_output(edges, ops):
            a = _score("task_a", edge_names, ops, k)
            a_test = a - 1 + ((5 * k) % 7) / 10
            b = _score("task_b", edge_names, ops, k)
        else:
            a = a_test = b = 10.0
        out.write(f"{'-'.join(ops)},{a:.2f},{a_test:.2f},{b:.2f}\n")
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
