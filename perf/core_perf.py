"""Core performance: table loading, REA ask/tell throughput, and that ``lapt eval`` never imports torch.

Run: ``python perf/core_perf.py``. Targets (issue: core): all tables < 0.5 s; > 20,000 REA steps/s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def time_table_loading() -> float:
    """Load the three NB201 datasets and the TNB101 table in a fresh interpreter (no warm cache)."""
    code = (
        "import time; t=time.perf_counter(); from lapt.tables.builtin import load_table; "
        "[load_table(n) for n in ('nb201', 'tnb101')]; print(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def rea_steps_per_second(steps: int) -> float:
    """Ask/tell steps per second of REA (population 5, tournament 2) against the NB201 CIFAR-10 table."""
    from lapt.spaces import get_space
    from lapt.strategies import make_strategy
    from lapt.tables.builtin import load_table

    space = get_space("nb201")
    val = load_table("nb201").values("cifar10")
    index = space.index
    strategy = make_strategy("rea", space, 0, population=5, tournament=2)
    mask = space.full_mask()
    start = time.perf_counter()
    for _ in range(steps):
        (g,) = strategy.ask(mask, 1)
        strategy.tell([(g, float(val[index(g)]))])
    return steps / (time.perf_counter() - start)


def eval_imports_torch() -> bool:
    """Run ``lapt eval`` under ``-X importtime`` and look for torch in the import log."""
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lapt.cli", "eval", "nb201", arch, "--task", "cifar10"],
        capture_output=True,
        text=True,
        check=True,
    )
    return any(line.rsplit("|", 1)[-1].strip().split(".")[0] == "torch" for line in out.stderr.splitlines())


def main() -> None:
    """Print the three figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    load = time_table_loading()
    print(f"table loading (nb201 x3 datasets + tnb101, cold process): {load:.3f} s   target < 0.5 s")
    rate = rea_steps_per_second(args.steps)
    print(f"REA ask/tell on the NB201 table: {rate:,.0f} steps/s over {args.steps:,} steps   target > 20,000/s")
    print(f"`lapt eval` imports torch: {eval_imports_torch()}   target False")


if __name__ == "__main__":
    main()
