"""Kill-and-resume: SIGKILL real `lapt run` processes at random moments, resume them, compare.

Each of ``--runs`` runs (NB201, cifar10 -> cifar100, budget 100, offline reasoner, tabular evaluation)
is started as a subprocess and killed with SIGKILL, in turn: once ``trials.jsonl`` holds a random number
of lines; after a random delay into the search (timed from when ``config.json`` appears); and, one run
in five, after a random delay into start-up (often before the run directory holds a run).
It is then resumed with ``lapt run ... --resume`` (which also starts a run killed before it began) and
compared with an uninterrupted run of the same seed: trials (apart from wall time; a ``cached`` trial
counts as the ``ok`` it replays), summary (apart from wall time), decisions, principle and mask files.
Repeated evaluations are counted by the run's evaluation cache: an evaluator call for an architecture
it already evaluated shows as ``computed > 1`` (target: 0); ``hits`` are the evaluations a resume got
from the cache instead of paying again.

The runs use a frozen copy of the package (installed layout, on ``PYTHONPATH``): a resume is refused
when the package source changed since the run started, and in a working tree that others are editing
that would measure their edits, not the resume.

Run: ``python perf/kill_resume.py`` (about two minutes on 2 idle cores). Target: 30/30 identical, 0 repeated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BUDGET = 100
SEEDS = 10  # runs cycle through this many seeds, so each reference run serves several kills


def freeze_package(dest: Path) -> Path:
    """Copy this checkout's package in its installed layout (lapt/ with agents/, graph/, tools/ inside)."""
    root = Path(__file__).resolve().parents[1]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for src, sub in (("lapt", "lapt"), ("agents", "lapt/agents"), ("graph", "lapt/graph"), ("tools", "lapt/tools")):
        shutil.copytree(root / src, dest / sub, ignore=ignore, dirs_exist_ok=True)
    return dest


def run_args(seed: int, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "lapt.cli", "run", "--space", "nb201", "--source", "cifar10", "--target", "cifar100",
        "--budget", str(BUDGET), "--seed", str(seed), "--run-dir", str(run_dir), "--quiet",
    ]  # fmt: skip


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def normalized(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**{k: v for k, v in t.items() if k != "cost_s"}, "status": t["status"].replace("cached", "ok")}
            for t in trials]


def differences(run: Path, ref: Path) -> list[str]:
    """What differs between a resumed run directory and the uninterrupted one (empty: identical)."""
    out = []
    if normalized(jsonl(run / "trials.jsonl")) != normalized(jsonl(ref / "trials.jsonl")):
        out.append("trials")
    if not (run / "summary.json").exists():
        return [*out, "no summary"]
    got, want = json.loads((run / "summary.json").read_text()), json.loads((ref / "summary.json").read_text())
    got.pop("wall_s"), want.pop("wall_s")
    if got != want:
        out.append("summary")
    if (run / "decisions.jsonl").read_text() != (ref / "decisions.jsonl").read_text():
        out.append("decisions")
    for folder in ("principles", "masks"):
        names = sorted(p.name for p in (ref / folder).iterdir())
        if sorted(p.name for p in (run / folder).iterdir()) != names or any(
            (run / folder / n).read_bytes() != (ref / folder / n).read_bytes() for n in names
        ):
            out.append(folder)
    return out


def cache_counts(run: Path) -> dict[str, int]:
    with sqlite3.connect(run / "eval_cache.sqlite") as conn:
        n, computed, hits = conn.execute("SELECT COUNT(*), SUM(computed), SUM(hits) FROM evaluations").fetchone()
    return {"entries": n, "repeated": (computed or 0) - n, "hits": hits or 0}


def timed_run(run: Path, seed: int) -> tuple[float, float]:
    """(seconds until config.json appears, seconds of the whole run) of one uninterrupted subprocess."""
    start = time.monotonic()
    proc = subprocess.Popen(run_args(seed, run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    began = None
    while proc.poll() is None:
        if began is None and (run / "config.json").exists():
            began = time.monotonic() - start
        time.sleep(0.002)
    total = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"an uninterrupted run failed (exit {proc.returncode})")
    return (began if began is not None else total), total


def kill_and_resume(
    i: int, seed: int, root: Path, ref: Path, rng: random.Random, timing: tuple[float, float]
) -> dict[str, Any]:
    run = root / f"run{i:02d}"
    mode = "startup" if i % 5 == 4 else ("lines" if i % 2 == 0 else "delay")
    target_lines = rng.randint(1, BUDGET - 1)
    startup_s, total_s = timing
    # Delays stay within 90 % of the measured phase so that (almost) every run is killed before it ends.
    delay = rng.uniform(0.0, startup_s) if mode == "startup" else rng.uniform(0.0, 0.9 * (total_s - startup_s))
    proc = subprocess.Popen(run_args(seed, run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spawned = time.monotonic()
    began: float | None = None
    trials = run / "trials.jsonl"
    while proc.poll() is None:
        now = time.monotonic()
        if began is None and (run / "config.json").exists():
            began = now
        if mode == "lines" and trials.exists() and len(trials.read_bytes().splitlines()) >= target_lines:
            break
        if mode == "startup" and now - spawned >= delay:
            break
        if mode == "delay" and began is not None and now - began >= delay:
            break
        time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lines_at_kill = len(jsonl(trials))
    held_run = (run / "config.json").exists()
    resumed = subprocess.run([*run_args(seed, run), "--resume"], capture_output=True, text=True)
    diff = differences(run, ref) if resumed.returncode == 0 else [f"resume failed: {resumed.stderr.strip()}"]
    return {
        "run": i,
        "seed": seed,
        "kill": mode,
        "killed": killed,
        "began": held_run,
        "trials_at_kill": lines_at_kill,
        "identical": not diff,
        "differences": diff,
        **cache_counts(run),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2, help="runs killed at once (processes x threads <= cores)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--out", help="write the per-run records here (JSON)")
    args = parser.parse_args()

    os.environ.setdefault("LANGSMITH_TRACING", "false")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="lapt_kill_resume_") as tmp:
        root = Path(tmp)
        code = freeze_package(root / "code")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
        sys.path.insert(0, str(code))
        import lapt

        assert Path(lapt.__file__).is_relative_to(code), lapt.__file__
        t0 = time.monotonic()
        refs = {}
        for seed in range(min(SEEDS, args.runs)):
            refs[seed] = root / f"ref{seed}"
            lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=BUDGET, seed=seed,
                     run_dir=refs[seed])
        t1 = time.monotonic()
        timing = timed_run(root / "timing", 0)
        if differences(root / "timing", refs[0]):
            raise SystemExit("an uninterrupted `lapt run` differs from the API run of the same seed")
        print(f"references: {len(refs)} uninterrupted runs in {t1 - t0:.1f} s; one `lapt run` subprocess takes "
              f"{timing[1]:.1f} s, {timing[0]:.1f} s of it before config.json appears")
        plans = [(i, i % SEEDS, random.Random(rng.random())) for i in range(args.runs)]
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            records = list(pool.map(lambda p: kill_and_resume(p[0], p[1], root, refs[p[1]], p[2], timing), plans))
        wall = time.monotonic() - t0

    for r in records:
        where = f"after {r['trials_at_kill']:>3} trials" if r["began"] else "before the run began"
        state = "identical" if r["identical"] else "DIFFERENT: " + ", ".join(r["differences"])
        killed = "killed" if r["killed"] else "ended by itself"
        print(f"run {r['run']:>2} seed {r['seed']} {r['kill']:<6} {killed} {where}: {state}; "
              f"cache hits {r['hits']}, repeated {r['repeated']}")
    identical = sum(r["identical"] for r in records)
    killed = sum(r["killed"] for r in records)
    mid = sum(r["killed"] and r["began"] and 0 < r["trials_at_kill"] < BUDGET for r in records)
    print(f"\nidentical to the uninterrupted run: {identical}/{len(records)}")
    print(f"killed: {killed}/{len(records)} ({mid} mid-search, {sum(not r['began'] for r in records)} before the run "
          f"directory held a run)")
    print(f"repeated evaluations: {sum(r['repeated'] for r in records)}; "
          f"evaluations answered by the cache after a kill: {sum(r['hits'] for r in records)}")
    print(f"wall time: {wall:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(records, indent=2) + "\n")
    return 0 if identical == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
