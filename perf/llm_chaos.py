"""LLM fault tolerance, measured: many LAPT runs against a server where a share of requests fail.

Every run (NB201, cifar10 -> cifar100, budget 20, one seed each) is made twice against the fake OpenAI
server of ``tests/fake_openai.py`` on 127.0.0.1: once with no faults, once with ``--fault-rate`` of the
requests (drawn by a seeded RNG) answered with a fault: 429 with and without Retry-After, 500/502/503,
connection reset, a response slower than the client timeout, a truncated body, an HTML page, prose,
an answer cut at the length limit, JSON failing the schema, masks with unknown ops, empty or too long
op lists, missing layers, or no valid architecture. The two runs of a seed are made one after the other
so that machine load hits both alike.

Reported: completed runs (target: all), invalid masks applied (target 0: every mask version of every run
is validated, and every evaluated architecture must lie in the mask in force when it was searched, unless
its trial says the search stepped outside that mask on purpose, and then it must lie outside),
and the median slowdown (faulty wall time / clean wall time, per seed). Backoff is capped at 50 ms and
the client timeout is 2 s (the slow fault answers after 2.5 s) so that the whole bench takes minutes.

Run: ``python perf/llm_chaos.py`` (``--runs 50 --fault-rate 0.4``); ``--json`` for a machine-readable line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake server is a test fixture; the bench reuses it as is

from fake_openai import CHAOS_FAULTS, FakeOpenAI  # noqa: E402


def invalid_masks(run_dir: Path, max_ops: int) -> list[str]:
    """Problems with the masks a run applied (empty list: all valid).

    A refiner mask must validate against ``mask_model(space, max_ops)``; a fallback (``full``, or
    ``kept`` after one) may only be the full space; every trial must lie inside the mask it was drawn in.
    """
    from pydantic import ValidationError

    from lapt.spaces import get_space
    from lapt.transfer.masks import full_mask, mask_model

    space = get_space("nb201")
    full = full_mask(space).layer_choices()
    problems: list[str] = []
    records = [json.loads(p.read_text()) for p in sorted((run_dir / "masks").glob("v*.json"))]
    if not records:
        return [f"{run_dir.name}: no mask at all"]
    for r in records:
        try:
            mask = mask_model(space).model_validate(r["mask"])
            if r["source"] == "refiner":
                mask_model(space, max_ops).model_validate(r["mask"])
            elif r["source"] not in ("full", "kept") or (
                mask.layer_choices() != full and any(len(v) > max_ops for v in mask.layer_choices().values())
            ):
                problems.append(f"{run_dir.name} v{r['version']}: {r['source']} mask is neither limited nor full")
        except ValidationError as e:
            problems.append(f"{run_dir.name} v{r['version']}: {e.errors()[0]['msg']}")
    by_version = {r["version"]: r["mask"] for r in records}
    for line in (run_dir / "trials.jsonl").read_text().splitlines():
        trial = json.loads(line)
        arch = space.describe_genotype(space.from_str(trial["arch"]))
        allowed = by_version.get(trial["mask_version"], {})  # the mask the trial was drawn in
        inside = all(op in allowed.get(layer, ()) for layer, op in arch.items())
        stepped_out = (trial.get("extras") or {}).get("outside_region") is True  # lapt.strategies.escape
        if not inside and not stepped_out:
            problems.append(f"{run_dir.name}: trial {trial['index']} lies outside the mask in force")
        if inside and stepped_out:
            problems.append(f"{run_dir.name}: trial {trial['index']} is marked outside but lies inside its mask")
    return problems


def one_run(llm: Any, seed: int, run_dir: Path, budget: int) -> dict[str, Any]:
    """One LAPT run; a crash is recorded, not raised (this is the measurement boundary)."""
    import lapt

    start = time.perf_counter()
    try:
        result = lapt.run(
            "nb201", ["cifar10"], "cifar100", budget, seed=seed, llm=llm, run_dir=run_dir, on_agent_failure="continue"
        )
    except Exception as e:  # failure is data here: a crashed run is exactly what the bench counts
        return {"ok": False, "wall_s": time.perf_counter() - start, "error": f"{type(e).__name__}: {e}"[:300]}
    wall = time.perf_counter() - start
    decisions = result.decisions
    return {
        "ok": result.summary["evaluations"] == budget,
        "wall_s": wall,
        "evaluations": result.summary["evaluations"],
        "llm_calls": result.summary["usage"]["llm_calls"],
        "fallbacks": sum(1 for d in decisions if d.get("ok") is False),
        "repairs": sum(1 for d in decisions for a in d.get("attempts", []) if a.startswith("invalid answer")),
        "retries": sum(1 for d in decisions for a in d.get("attempts", []) if "retrying in" in a),
        "best_val": (result.summary["best"] or {}).get("val"),
        "degraded": bool(result.summary["degraded"]),
        "invalid": invalid_masks(run_dir, result.settings.max_ops or 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--fault-rate", type=float, default=0.4)
    p.add_argument("--seed", type=int, default=0, help="seed of the server's fault RNG")
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--timeout", type=float, default=2.0, help="client timeout per HTTP attempt (s)")
    p.add_argument("--out", type=Path, help="keep the run directories here (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    args = p.parse_args(argv)

    from lapt.agents.llm import LLMSettings

    out = args.out or Path(tempfile.mkdtemp(prefix="lapt-chaos-"))
    clean_server = FakeOpenAI().start()
    chaos_server = FakeOpenAI(
        fault_rate=args.fault_rate, seed=args.seed, slow_s=args.timeout + 0.5, retry_after_s=0.2
    ).start()

    def settings(url: str) -> LLMSettings:
        return LLMSettings(
            model="fake",
            base_url=url,
            timeout_s=args.timeout,
            max_attempts=4,
            max_repairs=2,
            backoff_max_s=0.05,
            retry_after_max_s=1.0,
        )

    rows: dict[str, list[dict[str, Any]]] = {"clean": [], "faulty": []}
    one_run(settings(clean_server.url), 0, out / "warm-up", args.budget)  # imports and table loads, not timed
    clean_server.reset_log()
    start = time.perf_counter()
    try:
        for seed in range(args.runs):
            rows["clean"].append(one_run(settings(clean_server.url), seed, out / f"clean-{seed}", args.budget))
            rows["faulty"].append(one_run(settings(chaos_server.url), seed, out / f"faulty-{seed}", args.budget))
            print(
                f"\rrun {seed + 1}/{args.runs}  faulty {rows['faulty'][-1]['wall_s']:.2f} s",
                end="",
                file=sys.stderr,
                flush=True,
            )
    finally:
        clean_server.stop()
        chaos_server.stop()
    print(file=sys.stderr)
    total = time.perf_counter() - start

    requests = {"clean": clean_server.chat_requests(), "faulty": chaos_server.chat_requests()}
    faults = Counter(r.behaviour for r in requests["faulty"] if r.behaviour != "valid")
    slowdowns = [
        f["wall_s"] / c["wall_s"] for c, f in zip(rows["clean"], rows["faulty"], strict=True) if c["ok"] and f["ok"]
    ]

    def col(kind: str) -> dict[str, Any]:
        rs = rows[kind]
        done = [r for r in rs if r["ok"]]
        return {
            "completed": f"{len(done)}/{len(rs)}",
            "invalid masks applied": sum(len(r.get("invalid", [])) for r in rs),
            "HTTP requests": len(requests[kind]),
            "faults injected": sum(1 for r in requests[kind] if r.behaviour != "valid"),
            "LLM calls answered": sum(r.get("llm_calls", 0) for r in rs),
            "retried attempts": sum(r.get("retries", 0) for r in rs),
            "repair rounds": sum(r.get("repairs", 0) for r in rs),
            "agent fallbacks": sum(r.get("fallbacks", 0) for r in rs),
            "degraded runs": sum(bool(r.get("degraded")) for r in rs),
            "median wall per run (s)": round(statistics.median(r["wall_s"] for r in rs), 3),
            "max wall per run (s)": round(max(r["wall_s"] for r in rs), 3),
        }

    table = {"clean": col("clean"), "faulty": col("faulty")}
    width = max(len(k) for k in table["clean"])
    print(f"LLM chaos bench: {args.runs} runs x 2, NB201 cifar10->cifar100, budget {args.budget}, ", end="")
    print(f"{100 * args.fault_rate:.0f}% faulty requests (seed {args.seed}), timeout {args.timeout:g} s")
    print(f"{'':<{width}}  {'0% faults':>12}  {f'{100 * args.fault_rate:.0f}% faults':>12}")
    for key in table["clean"]:
        print(f"{key:<{width}}  {table['clean'][key]!s:>12}  {table['faulty'][key]!s:>12}")
    median_slowdown = statistics.median(slowdowns) if slowdowns else float("nan")
    print(f"{'median slowdown (faulty/clean)':<{width}}  {'':>12}  {median_slowdown:>11.2f}x")
    print("faults injected by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    crashed = [r["error"] for r in rows["faulty"] + rows["clean"] if "error" in r]
    for err in crashed[:5]:
        print(f"crashed run: {err}")
    for problem in [p for r in rows["faulty"] + rows["clean"] for p in r.get("invalid", [])][:5]:
        print(f"invalid mask: {problem}")
    print(f"total {total:.1f} s; run directories in {out}")
    if args.json:
        print(json.dumps({"table": table, "median_slowdown": median_slowdown, "faults": faults, "total_s": total}))
    unknown = set(faults) - set(CHAOS_FAULTS)
    ok = not crashed and not unknown and table["faulty"]["invalid masks applied"] == 0
    return 0 if ok and all(r["ok"] for r in rows["faulty"]) else 1


if __name__ == "__main__":
    sys.exit(main())
