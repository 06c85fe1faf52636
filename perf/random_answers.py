"""Weak answers and faulty servers, measured: LAPT runs against answers drawn at random from the schema.

Two servers of ``tests/`` on 127.0.0.1, one run per server seed (NB201, cifar10 -> cifar100, budget 20,
search seed 0, the default ``--on-agent-failure fallback``):

* ``random``: every answer drawn from the request's JSON schema (``tests/schema_random.py``), in the
  styles real servers use (plain, fenced, think block, reasoning field): schema-valid nonsense.
* ``faults``: the same answers, and ``--fault-rate`` of the requests (0.4) failing as real servers fail
  (429, 500, 503, a connection reset, an answer slower than the timeout, a truncated body, an HTML
  page, JSON that breaks the schema; ``tests/fake_openai.py``).

Reported per server: runs that completed (target: all), runs whose learner answer was kept (after its
part-by-part judgement) or replaced by the offline miner's, principles dropped and the lines recording
why, refinements replaced by the offline refiner's region, and the mean best test accuracy.

Run: ``python perf/random_answers.py`` (``--runs 20 --fault-rate 0.4``); exit status 1 if a run failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake servers are test fixtures; the bench reuses them as they are

from fake_openai import FakeOpenAI  # noqa: E402
from schema_random import STYLES, SchemaDraws  # noqa: E402


def one_run(url: str, run_dir: Path) -> dict[str, Any]:
    import lapt
    from lapt.agents.llm import LLMSettings

    llm = LLMSettings(model="fake", base_url=url, timeout_s=2.0, backoff_max_s=0.05, max_attempts=4)
    try:
        result = lapt.run(
            space="nb201", sources=["cifar10"], target="cifar100", budget=20, seed=0, llm=llm, run_dir=run_dir
        )
    except Exception as e:  # a run that did not complete is what this bench counts
        return {"completed": False, "error": f"{type(e).__name__}: {e}"[:200]}
    decisions = [json.loads(line) for line in (run_dir / "decisions.jsonl").read_text().splitlines()]
    learner = decisions[0]
    changes = [c for d in decisions for c in d.get("changes") or []]
    return {
        "completed": len(result.trials) == 20,
        "learner_kept": bool(learner.get("ok")),
        "learner_fallback": bool((learner.get("fallback") or {}).get("ok")),
        "dropped_principles": sum(c.endswith("is left") or ": dropped," in c for c in changes),
        "changes": len(changes),
        "offline_regions": sum(m["source"] == "offline_refiner" for m in result.masks),
        "test": (result.summary.get("best") or {}).get("test"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--fault-rate", type=float, default=0.4)
    args = ap.parse_args()
    failed = 0
    for name in ("random", "faults"):
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.runs):
                draws = SchemaDraws(seed)
                if name == "random":
                    server = FakeOpenAI(answer=draws.answer, fault_rate=1.0, faults=STYLES, seed=seed)
                else:  # every behaviour drawn from a bag holding faults at the rate asked, styles otherwise
                    server = FakeOpenAI(
                        answer=draws.answer, fault_rate=1.0, seed=seed, slow_s=2.5, retry_after_s=0.05,
                        faults=_mix(args.fault_rate),
                    )  # fmt: skip
                with server as fake:
                    rows.append(one_run(fake.url, Path(tmp) / f"{name}-{seed}"))
        done = [r for r in rows if r["completed"]]
        failed += len(rows) - len(done)
        tests = [r["test"] for r in done if r.get("test") is not None]
        print(
            f"{name:>7}: {len(done)}/{len(rows)} completed; learner kept {sum(r['learner_kept'] for r in done)}, "
            f"miner used {sum(r['learner_fallback'] for r in done)}; principles dropped "
            f"{sum(r['dropped_principles'] for r in done)} ({sum(r['changes'] for r in done)} change lines); "
            f"offline regions {sum(r['offline_regions'] for r in done)}; best test "
            f"{statistics.mean(tests):.2f} +- {statistics.pstdev(tests):.2f}"
        )
        for r in rows:
            if not r["completed"]:
                print(f"    failed: {r.get('error')}")
    return 1 if failed else 0


FAULTS = ("rate_limit", "error_500", "error_503", "slow", "non_json_body", "schema_fail", "reset", "truncated")


def _mix(rate: float) -> tuple[str, ...]:
    """Behaviours drawn uniformly: a share ``rate`` of them faults, the rest answer styles (20 slots)."""
    n_fault = round(20 * rate)
    faults = [FAULTS[i % len(FAULTS)] for i in range(n_fault)]
    styles = [STYLES[i % len(STYLES)] for i in range(20 - n_fault)]
    return tuple(faults + styles)


if __name__ == "__main__":
    sys.exit(main())
