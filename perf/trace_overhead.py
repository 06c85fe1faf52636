"""Tracing overhead: an offline run with and without its file trace, in one process.

Run: ``python perf/trace_overhead.py`` (budget 100, NB201 CIFAR-10 -> CIFAR-100, 5 pairs of runs).
Target: the file trace adds under 10 % of wall time. Also reports the trace's size per
evaluation. The two variants alternate (traced, untraced, traced, ...) so that load on the machine
hits both alike; medians are reported, with CPU time (all threads of this process) next to wall time
because wall time on a shared machine moves by more than the effect being measured.

``--compare-stock`` also times the same graph with LangChain's own ``LangChainTracer`` writing to the
same file client: the reason ``FileTracer`` exists.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def timed_run(settings: Any, space: Any, run_dir: Path, trace: bool) -> tuple[float, float, dict[str, Any]]:
    """One full ``execute()`` (run directory, checkpoints and all); returns (wall s, CPU s, summary)."""
    from lapt.api import execute

    cpu, wall = time.process_time(), time.perf_counter()
    result = execute(settings, space, run_dir=run_dir, trace=trace)
    return time.perf_counter() - wall, time.process_time() - cpu, result.summary


def _context(settings: Any, space: Any) -> tuple[Any, Any]:
    """A run context as the run assembler builds it (offline reasoner, in-process table evaluator)."""
    from lapt.graph.assembly import build_agents, build_context, make_reasoner, prompts_for, search_session
    from lapt.tools.executors import make_evaluation

    evaluator, executor = make_evaluation(settings)
    agents = build_agents(make_reasoner(), prompts_for(settings), settings.top_k)
    ctx = build_context(settings, space, evaluator=evaluator, agents=agents, search=search_session(settings, space))
    return ctx, executor


def stock_tracer_run(settings: Any, space: Any, run_dir: Path) -> tuple[float, float]:
    """The graph alone under LangChain's stock tracer and our file client (no run directory writes)."""
    import langsmith
    from langchain_core.tracers.langchain import LangChainTracer

    from lapt.graph.build import build_graph
    from lapt.graph.routing import recursion_limit
    from lapt.graph.trace_client import FileTraceClient

    ctx, executor = _context(settings, space)
    graph = build_graph()
    run_dir.mkdir(parents=True, exist_ok=True)
    client = FileTraceClient(run_dir / "trace.jsonl")
    config = {
        "recursion_limit": recursion_limit(settings.budget, settings.adapt_every, settings.batch_size),
        "callbacks": [LangChainTracer(client=client)],
    }
    cpu, wall = time.process_time(), time.perf_counter()
    with langsmith.tracing_context(client=client, enabled=True):
        graph.invoke({"n_trials": 0}, context=ctx, config=config)
    client.finish()
    executor.close()
    return time.perf_counter() - wall, time.process_time() - cpu


def graph_only_run(settings: Any, space: Any) -> tuple[float, float]:
    """The graph alone, untraced: the baseline of :func:`stock_tracer_run`."""
    from lapt.graph.build import build_graph
    from lapt.graph.routing import recursion_limit

    ctx, executor = _context(settings, space)
    graph = build_graph()
    config = {"recursion_limit": recursion_limit(settings.budget, settings.adapt_every, settings.batch_size)}
    cpu, wall = time.process_time(), time.perf_counter()
    graph.invoke({"n_trials": 0}, context=ctx, config=config)
    executor.close()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--pairs", type=int, default=5, help="traced/untraced pairs (after one warm-up pair)")
    p.add_argument("--compare-stock", action="store_true", help="also time LangChain's stock LangChainTracer")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()

    from lapt.api import resolve_settings
    from lapt.runs.trace_file import TRACE_FILE, read_trace, tree_problems

    settings, space = resolve_settings(
        space="nb201", sources=["cifar10"], target="cifar100", budget=args.budget, seed=0
    )
    root = Path(tempfile.mkdtemp(prefix="lapt-trace-bench-"))
    times: dict[str, list[tuple[float, float]]] = {"traced": [], "untraced": []}
    last_traced: Path | None = None
    evaluations = 0
    for i in range(args.pairs + 1):
        for variant in ("traced", "untraced"):
            run_dir = root / f"{variant}-{i}"
            wall, cpu, summary = timed_run(settings, space, run_dir, trace=variant == "traced")
            if i > 0:  # the first pair warms caches (tables, imports) for both
                times[variant].append((wall, cpu))
            if variant == "traced":
                last_traced, evaluations = run_dir, summary["evaluations"]
    assert last_traced is not None
    trace = read_trace(last_traced)
    size = (last_traced / TRACE_FILE).stat().st_size

    def med(variant: str, k: int) -> float:
        return statistics.median(t[k] for t in times[variant])

    out: dict[str, Any] = {
        "budget": args.budget,
        "evaluations": evaluations,
        "pairs": args.pairs,
        "wall_s": {"untraced": med("untraced", 0), "traced": med("traced", 0)},
        "cpu_s": {"untraced": med("untraced", 1), "traced": med("traced", 1)},
        "trace_runs": len(trace.runs),
        "trace_bytes": size,
        "bytes_per_evaluation": round(size / max(1, evaluations)),
        "tree_problems": len(tree_problems(trace.runs)),
    }
    out["wall_overhead_pct"] = round(100 * (out["wall_s"]["traced"] / out["wall_s"]["untraced"] - 1), 1)
    out["cpu_overhead_pct"] = round(100 * (out["cpu_s"]["traced"] / out["cpu_s"]["untraced"] - 1), 1)
    if args.compare_stock:
        stock: list[tuple[float, float]] = []
        bare: list[tuple[float, float]] = []
        for i in range(args.pairs + 1):
            s = stock_tracer_run(settings, space, root / f"stock-{i}")
            b = graph_only_run(settings, space)
            if i > 0:
                stock.append(s)
                bare.append(b)
        out["stock_langchain_tracer"] = {
            "graph_wall_s": statistics.median(t[0] for t in bare),
            "traced_wall_s": statistics.median(t[0] for t in stock),
            "graph_cpu_s": statistics.median(t[1] for t in bare),
            "traced_cpu_s": statistics.median(t[1] for t in stock),
        }
        st = out["stock_langchain_tracer"]
        st["cpu_overhead_pct"] = round(100 * (st["traced_cpu_s"] / st["graph_cpu_s"] - 1), 1)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    w, c = out["wall_s"], out["cpu_s"]
    print(f"budget {args.budget} offline run, NB201 cifar10 -> cifar100, median of {args.pairs} pairs")
    print(f"  wall: untraced {w['untraced']:.3f} s  traced {w['traced']:.3f} s  -> +{out['wall_overhead_pct']} %")
    print(f"  cpu:  untraced {c['untraced']:.3f} s  traced {c['traced']:.3f} s  -> +{out['cpu_overhead_pct']} %")
    print(
        f"  trace: {out['trace_runs']} runs, {size:,} bytes, {out['bytes_per_evaluation']:,} bytes per evaluation "
        f"({evaluations} evaluations), tree problems: {out['tree_problems']}"
    )
    if args.compare_stock:
        st = out["stock_langchain_tracer"]
        print(
            f"  stock LangChainTracer (graph only): cpu {st['graph_cpu_s']:.3f} s -> {st['traced_cpu_s']:.3f} s "
            f"(+{st['cpu_overhead_pct']} %)"
        )


if __name__ == "__main__":
    main()
