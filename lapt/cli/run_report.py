"""What ``lapt run`` and ``lapt resume`` print at the end of a run: where it went, its best result, and
(on the last line) whether it was degraded."""

from __future__ import annotations

import sys
from typing import Any

from lapt.cli.printable import printable
from lapt.search.metrics import metric_str


def metric_text(settings: Any, val: float, test: float | None) -> str:
    """``val=... test=...`` as the run's table has them: a test-only benchmark shows its one metric, and a
    lower-is-better metric says so."""
    from lapt.spaces import get_space
    from lapt.tables.registry import table_for

    space = get_space(settings.space)
    table = table_for(space) if settings.evaluator == "table" else None
    direction = "" if space.higher_is_better else "  (lower is better)"
    if table is not None and table.selection == "test":
        return f"test={metric_str(val)} (the benchmark's only metric: selection uses it){direction}"
    return f"val={metric_str(val)}  test={'n/a' if test is None else metric_str(test, 3)}{direction}"


def report(result: Any) -> int:
    """Print where the run went and its result (also used by ``lapt resume``).

    A degraded run (an agent without a valid answer, a fallback taken) says so on the last line.
    """
    s = result.summary
    best = s["best"]
    print(f"run directory: {result.run_dir}")
    if best is None:
        errors = [t.error for t in result.trials if t.error]
        first = f"; the first: {errors[0]}" if errors else ""
        _degraded(s)
        print(printable(f"lapt: error: no successful evaluation: {s['evaluations']} evaluation(s), all failed{first}"),
              file=sys.stderr)
        return 1
    where = f"evaluation {best['index'] + 1} of {s['evaluations']}"
    print(f"best: {best['arch']}  {metric_text(result.settings, best['val'], best['test'])}  ({where})")
    if "evals_to_optimum" in s:
        print(reach_line(s))
    u = s["usage"]
    failed = f" ({s['adaptations_failed']} without new principles)" if s.get("adaptations_failed") else ""
    outside = f"  outside the region: {s['outside_region']}" if result.settings.escape else ""
    print(
        f"masks: {len(result.masks)}  adaptations: {s['adaptations']}{failed}{outside}  "
        f"LLM calls: {u['llm_calls']}  tokens: {u['input_tokens'] + u['output_tokens']}"
    )
    _degraded(s)
    return 0


def _reached(n: int | None, evaluations: int) -> str:
    return f"not reached in {evaluations} evaluations" if n is None else f"reached at evaluation {n}"


def reach_line(summary: dict[str, Any]) -> str:
    """How soon the run reached the target table's optimum and a top-0.1 % cell, in words: a run that never
    did says so with the number of evaluations it made (not a bare ``None``), next to the optimum's value."""
    n = summary["evaluations"]
    optimum = summary.get("optimum_val")
    value = "" if optimum is None else f" ({metric_str(optimum)})"
    return (
        f"the optimum{value}: {_reached(summary['evals_to_optimum'], n)};  "
        f"a top-0.1% cell: {_reached(summary['evals_to_top0.1%'], n)}"
    )


def _degraded(summary: dict[str, Any]) -> None:
    reasons = summary.get("degraded") or []
    if reasons:
        print(printable(f"DEGRADED: {'; '.join(reasons)}"))
