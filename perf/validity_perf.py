"""What validity costs the search: REA ask/tell steps per second on constrained spaces, as ratios to NB201.

Run: ``python perf/validity_perf.py``. Three spaces, each searched by REA (population 5, tournament 2)
with a deterministic score per architecture, in one process:

* NB201 (every combination valid: the fast path);
* a variable-depth chain of 8 layers (5 of 3 ops, then 3 optional ones of 3 ops or left out) with one
  forbidden combination: rules, 8,640 valid architectures out of 15,552 combinations;
* a chain of 6 layers x 5 ops whose candidates are a 6,000-row table out of 15,625 combinations
  (``table_only``).

Each search takes a third of its space's valid architectures, so that no space is measured nearer to
exhaustion (where every strategy slows down, hunting the last unseen architectures) than another.

Target (issue: user spaces): a constrained space keeps at least a quarter of NB201's rate (which is
> 20,000 steps/s, see perf/core_perf.py), so validity never dominates a search.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

RULES = """\
name = "macro"
kind = "chain"
tasks = ["t"]
[ops]
conv = "3x3 conv"
pool = "max pool"
sep = "separable conv"
none = "no module"
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep"]
[[layers]]
ops = ["conv", "pool", "sep", "none"]
[[layers]]
ops = ["conv", "pool", "sep", "none"]
[[layers]]
ops = ["conv", "pool", "sep", "none"]
[validity]
optional = ["layer_6", "layer_7", "layer_8"]
forbid = [{ layer_1 = "pool", layer_2 = "pool" }]
"""

TABLE_ONLY = """\
name = "sparse"
kind = "chain"
tasks = ["t"]
[ops]
a = "op a"
b = "op b"
c = "op c"
d = "op d"
e = "op e"
""" + "".join('[[layers]]\nops = ["a", "b", "c", "d", "e"]\n' for _ in range(6)) + """\
[validity]
table_only = true
[table]
file = "sparse.csv"
"""


def steps_per_second(space, steps: int) -> float:
    """REA ask/tell steps per second in the full space, scoring each architecture by a fixed hash."""
    from lapt.strategies import make_strategy

    strategy = make_strategy("rea", space, 0, population=5, tournament=2)
    mask = space.full_mask()
    score = {}
    start = time.perf_counter()
    done = 0
    for _ in range(steps):
        proposed = strategy.ask(mask, 1)
        if not proposed:
            break
        g = proposed[0]
        f = score.setdefault(g, (hash(g) % 1000) / 10.0)
        strategy.tell([(g, f)])
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    """Print the three rates and the ratios to NB201."""
    argparse.ArgumentParser(description=__doc__).parse_args()
    from lapt.spaces import get_space
    from lapt.spaces.user import load_user_space

    folder = Path(tempfile.mkdtemp(prefix="lapt-validity-"))
    (folder / "macro.toml").write_text(RULES)
    (folder / "sparse.toml").write_text(TABLE_ONLY)
    rng = random.Random(0)
    rows = rng.sample(range(5**6), 6000)
    lines = ["arch,t"] + [
        "-".join("abcde"[(i // 5**k) % 5] for k in range(5, -1, -1)) + f",{rng.random():.4f}" for i in rows
    ]
    (folder / "sparse.csv").write_text("\n".join(lines) + "\n")
    nb201 = get_space("nb201")
    macro = load_user_space(folder / "macro.toml")
    sparse = load_user_space(folder / "sparse.toml")
    base = steps_per_second(nb201, nb201.size() // 3)
    print(f"NB201 (no validity):                      {base:>9,.0f} steps/s")
    for label, space in (
        (f"rules: variable depth ({macro.size():,} of {macro.grid_size():,})", macro),
        (f"table only ({sparse.size():,} of {sparse.grid_size():,})", sparse),
    ):
        rate = steps_per_second(space, space.size() // 3)
        print(f"{label:<42}{rate:>9,.0f} steps/s   {rate / base:.2f} x NB201   target >= 0.25")


if __name__ == "__main__":
    main()
