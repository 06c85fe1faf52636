"""``lapt trace show|upload RUN_DIR``: read a run's decision trace in the terminal, or send it to LangSmith.

``show`` prints the decision timeline from ``trace.jsonl`` alone (no LangSmith needed): the principles
learned, each mask per layer with its rationale, each adaptation and its branch, the evaluations in
between with the best value so far, and the tokens and evaluations spent at every decision.
``upload`` sends the saved runs, ids and dotted orders unchanged, to LangSmith or any server speaking
its API. A trace cut short by a kill is read as far as it goes: a truncated last line is reported and
skipped, runs that never ended are listed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lapt.cli.printable import printable
from lapt.errors import UserError
from lapt.search.metrics import metric_str

_WIDTH = 110
MAX_WARNINGS = 10
"""Skipped lines reported one by one; the rest are counted."""
_NODES = frozenset({"learn_principles", "refine_space", "search", "evaluate", "adapt", "finish"})


def register(sub: Any) -> None:
    """Add ``trace`` with its ``show`` and ``upload`` sub-commands."""
    p = sub.add_parser("trace", help="show a run's decision trace, or upload it to LangSmith")
    tsub = p.add_subparsers(dest="trace_command", required=True, parser_class=type(p))
    show = tsub.add_parser("show", help="the decision timeline of a run (from its trace.jsonl)")
    show.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or its trace.jsonl)")
    show.add_argument("--evaluations", action="store_true", help="one line per evaluation")
    show.add_argument("--full", action="store_true", help="principles and rationales in full (not cut to one line)")
    show.set_defaults(func=show_cmd)
    up = tsub.add_parser("upload", help="send a run's trace to LangSmith (or a compatible server)")
    up.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or its trace.jsonl)")
    up.add_argument("--endpoint", metavar="URL", help="API URL (default: $LANGSMITH_ENDPOINT, else LangSmith)")
    up.add_argument("--project", metavar="NAME", help="project (default: $LANGSMITH_PROJECT, else lapt)")
    up.add_argument("--timeout", type=float, default=30.0, metavar="S", help="give up after S seconds (default 30)")
    up.set_defaults(func=upload_cmd)


# -- reading -------------------------------------------------------------------------------------------
def _read(where: str) -> Any:
    from lapt.runs.trace_file import read_trace, tree_problems

    trace = read_trace(where)
    for problem in trace.problems[:MAX_WARNINGS]:
        print(printable(f"lapt: warning: {trace.path}: {problem}"), file=sys.stderr)
    if len(trace.problems) > MAX_WARNINGS:
        skipped = len(trace.problems) - MAX_WARNINGS
        print(printable(f"lapt: warning: {trace.path}: {skipped:,} more lines skipped"), file=sys.stderr)
    broken = tree_problems(trace.runs)
    if broken:
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        print(printable(f"lapt: warning: {trace.path}: {broken[0]}{more}"), file=sys.stderr)
    return trace


def _usage(run: Mapping[str, Any]) -> dict[str, int]:
    usage = ((run.get("extra") or {}).get("metadata") or {}).get("usage_metadata")
    usage = usage or (run.get("outputs") or {}).get("usage_metadata") or {}
    return {k: int(v) for k, v in usage.items() if isinstance(v, int)}


def _trial(run: Mapping[str, Any]) -> dict[str, Any]:
    """The trial of an ``evaluate_architecture`` run (what is known of it if it never ended)."""
    output = (run.get("outputs") or {}).get("output")
    trial = output.get("trial") if isinstance(output, dict) else None
    if isinstance(trial, dict):
        return {**(run.get("inputs") or {}), **trial}  # the run's inputs hold the architecture and position
    inputs = run.get("inputs") or {}
    status = "error" if run.get("error") else ("running" if not run.get("end_time") else "unknown")
    return {"index": inputs.get("index"), "arch": inputs.get("arch"), "status": status, "val": None}


def _cut(text: Any, width: int | None = _WIDTH) -> str:
    s = " ".join(str(text).split())
    return s if width is None or len(s) <= width else s[: width - 3] + "..."


def _fmt(v: Any) -> str:
    return "n/a" if v is None else metric_str(v, 2) if isinstance(v, float) else str(v)


# -- the timeline --------------------------------------------------------------------------------------
class _Timeline:
    """Walks one trace's runs in dotted order and renders its decisions."""

    def __init__(self, per_evaluation: bool, full: bool = False):
        self.per_evaluation = per_evaluation
        self.width: int | None = None if full else _WIDTH - 20
        self.lines: list[str] = []
        self.evals = 0
        self.failed = 0
        self.running = 0  # evaluations that had started when the trace ends (a killed run)
        self.best: dict[str, Any] | None = None
        self.tokens = {"input_tokens": 0, "output_tokens": 0}
        self.llm_calls = 0
        self.llm_errors = 0
        self.repairs = 0
        self.round = 0
        self._announced: Any = None  # the adapt node whose round line was printed
        self._segment: list[dict[str, Any]] = []

    def emit(self, text: str, detail: Iterable[str] = ()) -> None:
        self._flush_segment()
        spent = f"{self.evals:>5} {self.tokens['input_tokens'] + self.tokens['output_tokens']:>8}"
        self.lines.append(f"{spent}  {text}")
        self.lines += [f"{'':>15}    {d}" for d in detail]

    def _flush_segment(self) -> None:
        if not self._segment:
            return
        seg, self._segment = self._segment, []
        ok = [t for t in seg if isinstance(t.get("val"), (int, float))]
        indices = [t["index"] for t in seg if isinstance(t.get("index"), int)]  # parallel runs start unordered
        span = f"{min(indices) + 1}-{max(indices) + 1}" if indices else "?"
        best = max(ok, key=lambda t: t["val"]) if ok else None
        text = f"evaluations {span}: {len(seg)} run" + ("" if len(seg) == 1 else "s")
        if len(ok) < len(seg):
            text += f" ({len(seg) - len(ok)} without a result)"
        if best is not None:
            text += f", best {_fmt(best['val'])}"
        if self.best is not None:
            text += f"; best so far {_fmt(self.best.get('val'))} (evaluation {self.best.get('index', 0) + 1})"
        self.lines.append(f"{self.evals:>5} {self.tokens['input_tokens'] + self.tokens['output_tokens']:>8}  {text}")

    def evaluation(self, run: Mapping[str, Any]) -> None:
        trial = _trial(run)
        self.evals += 1
        val, status = trial.get("val"), trial.get("status")
        if status == "running":
            self.running += 1
        elif not isinstance(val, (int, float)) or status == "failed":
            self.failed += 1
        elif self.best is None or val > self.best["val"]:
            self.best = trial
        if self.per_evaluation:
            err = f"  {_cut(trial.get('error'), 60)}" if trial.get("error") else ""
            status, arch = trial.get("status"), trial.get("arch")
            self.emit(f"evaluation {_fmt(trial.get('index'))}: {status} val {_fmt(val)} {arch}{err}")
        else:
            self._segment.append(trial)

    def llm(self, run: Mapping[str, Any]) -> None:
        self.llm_calls += 1
        if run.get("error"):
            self.llm_errors += 1
        for key, value in _usage(run).items():
            if key in self.tokens:
                self.tokens[key] += value

    def principles(self, out: Mapping[str, Any]) -> None:
        items = out.get("principles") or []
        who = f" by {out['reasoner']}" if out.get("reasoner") else ""
        saw = f", saw {', '.join(out.get('tasks_seen') or [])}" if out.get("tasks_seen") else ""
        detail = [f"- {_cut(p.get('statement'), self.width)} ({_fmt(p.get('confidence'))})" for p in items]
        count = f"{len(items)} principle{'' if len(items) == 1 else 's'}"
        self.emit(f"principles v{out.get('version')}: {out.get('source')}{who}{saw}: {count}", detail)

    def mask(self, out: Mapping[str, Any]) -> None:
        mask = dict(out.get("mask") or {})
        rationale = mask.pop("rationale", "")
        detail = []
        for layer, allowed in mask.items():
            if isinstance(allowed, dict):
                text = f"{', '.join(allowed.get('ops', []))}  inputs {allowed.get('inputs')}"
            else:
                text = ", ".join(allowed)
            detail.append(f"{layer:<16} {text}")
        if rationale:
            detail.append(f"rationale: {_cut(rationale, self.width)}")
        if out.get("note"):
            detail.append(f"note: {_cut(out['note'], self.width)}")
        recorded = out.get("size")  # an integer, or its digits as a string beyond 64 bits
        if isinstance(recorded, str) and recorded.isdigit():
            recorded = int(recorded)
        size = f"{recorded:,}" if isinstance(recorded, int) and not isinstance(recorded, bool) else "?"
        self.emit(
            f"mask v{out.get('version')} ({out.get('source')}, round {out.get('round')}): {size} architectures", detail
        )

    def round_line(self, out: Mapping[str, Any]) -> None:
        """An adaptation round, from the adapt node's outputs: before the principles it produced."""
        self.round += 1
        self.emit(f"round {self.round}: {out.get('branch')} (best so far {_fmt(out.get('best_at_adapt'))})")

    def decision(self, d: Mapping[str, Any]) -> None:
        """An agent decision: only failures and fallbacks are worth a line (the facts have their own)."""
        if d.get("ok") is False or d.get("source") in ("kept", "full", "widened"):
            why = d.get("error") or d.get("note") or ""
            note = f" ({_cut(d['note'], 60)})" if d.get("error") and d.get("note") else ""
            self.emit(f"{d.get('agent')}: {_cut(why, self.width)}{note}")

    def node(self, name: str, out: Mapping[str, Any]) -> None:
        """A graph step's decisions, from its outputs (the node's update)."""
        if name == "adapt" and out.get("branch"):
            self.round_line(out)
        for d in out.get("decisions") or ():
            if isinstance(d, Mapping):
                self.decision(d)
        for pset in out.get("principles") or ():
            if isinstance(pset, Mapping):
                self.principles(pset)
        if isinstance(out.get("mask"), Mapping):
            self.mask(out["mask"])
        if name == "finish" and out.get("done"):
            self.emit(f"end: {out['done']} after {self.evals} evaluations")

    def summary(self) -> list[str]:
        self._flush_segment()
        best = self.best
        where = "none" if best is None else f"val {_fmt(best.get('val'))} test {_fmt(best.get('test'))} "
        where += "" if best is None else f"at evaluation {best.get('index', 0) + 1}: {best.get('arch')}"
        tokens = self.tokens["input_tokens"] + self.tokens["output_tokens"]
        running = f", {self.running} never finished" if self.running else ""
        llm = (
            f"{self.llm_calls} LLM calls ({self.llm_errors} failed), {self.repairs} repairs, {tokens:,} tokens "
            f"({self.tokens['input_tokens']:,} in, {self.tokens['output_tokens']:,} out)"
        )
        return [
            f"spent: {self.evals} evaluations ({self.failed} failed{running}), {self.round} adaptation rounds; {llm}",
            f"best: {where}",
        ]


def timeline(runs: Sequence[Mapping[str, Any]], per_evaluation: bool = False, full: bool = False) -> list[str]:
    """The decision timeline of the runs of one trace, as terminal lines."""
    t = _Timeline(per_evaluation, full)
    root = next((r.get("id") for r in runs if not r.get("parent_run_id")), None)
    for run in sorted(runs, key=lambda r: str(r.get("dotted_order") or "")):
        name, out = str(run.get("name")), run.get("outputs") or {}
        if run.get("run_type") == "tool" and name == "evaluate_architecture":
            t.evaluation(run)
        elif run.get("run_type") == "llm":
            t.llm(run)
        elif name.startswith("repair_"):
            t.repairs += 1
        elif run.get("run_type") == "chain" and name in _NODES and run.get("parent_run_id") == root:
            t.node(name, out)
    return [f"{'evals':>5} {'tokens':>8}  decision", *t.lines, "", *t.summary()]


def show_cmd(args: argparse.Namespace) -> int:
    """Print each trace's header and decision timeline."""
    trace = _read(args.run_dir)
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for run in trace.runs:
        by_trace.setdefault(str(run.get("trace_id")), []).append(run)
    out = [f"{trace.path}: {len(trace.runs)} runs in {len(by_trace)} trace(s)"]
    for n, runs in enumerate(by_trace.values(), 1):
        root = next((r for r in runs if not r.get("parent_run_id")), None)
        try:
            out += ["", _header(root, n, len(by_trace))]
            unfinished = [r for r in runs if not r.get("end_time")]
            if unfinished:
                names = ", ".join(dict.fromkeys(str(r.get("name")) for r in unfinished))
                out.append(f"  {len(unfinished)} runs never ended (killed, or still running): {_cut(names, 80)}")
            out += timeline(runs, per_evaluation=args.evaluations, full=args.full)
        except (TypeError, AttributeError, ValueError, KeyError) as e:
            # Data boundary: the file passed the line checks (read_trace) but holds fields of shapes no
            # lapt run writes (a list where a mask belongs, times of different zones...).
            raise UserError(
                f"{trace.path}: trace {n} holds runs lapt did not write ({type(e).__name__}: {_cut(e, 100)})"
            ) from e
    print("\n".join(printable(line) for line in out))
    return 0


def _header(root: Mapping[str, Any] | None, n: int, total: int) -> str:
    label = f"trace {n} of {total}" if total > 1 else "trace"
    if root is not None and root.get("inputs") == {"input": None}:  # the graph went on from a checkpoint
        label += " (resumed)"
    if root is None:
        return f"{label}: its root run is missing (the file was cut before the run's first line)"
    settings = ((root.get("extra") or {}).get("metadata") or {}).get("settings") or {}
    what = ""
    if settings:
        what = (
            f" {settings.get('space')} {', '.join(settings.get('sources') or [])} -> {settings.get('target')}, "
            f"budget {settings.get('budget')}, seed {settings.get('seed')}, {settings.get('reasoner')}"
        )
    start = str(root.get("start_time", ""))[:19].replace("T", " ")
    if root.get("end_time"):
        from datetime import datetime

        took = datetime.fromisoformat(str(root["end_time"])) - datetime.fromisoformat(str(root["start_time"]))
        state = f"took {took.total_seconds():.1f} s" + (", failed" if root.get("error") else "")
    else:
        state = "did not finish"
    err = f"\n  error: {_cut(str(root['error']).splitlines()[0], 100)}" if root.get("error") else ""
    return f"{label} {root.get('name')}:{what}; started {start} UTC, {state}{err}"


# -- uploading -----------------------------------------------------------------------------------------
def upload_cmd(args: argparse.Namespace) -> int:
    """Send the runs of a trace file to LangSmith (or a compatible endpoint)."""
    import os

    from lapt.graph.trace_client import langsmith_endpoint, langsmith_project, upload_runs

    if args.timeout <= 0:
        raise UserError("--timeout must be > 0")
    trace = _read(args.run_dir)
    endpoint = langsmith_endpoint(args.endpoint)
    if not endpoint.startswith(("http://", "https://")):
        raise UserError(f"--endpoint {endpoint!r}: expected an http(s) URL")
    project = langsmith_project(args.project)
    key = os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY") or None
    sent = upload_runs(trace.runs, api_url=endpoint, api_key=key, project=project, timeout_s=args.timeout)
    traces = len({r.get("trace_id") for r in trace.runs})
    unfinished = len(trace.unfinished)
    note = f" ({unfinished} never ended)" if unfinished else ""
    print(printable(f"uploaded {sent} runs{note} in {traces} trace(s) to {endpoint}, project {project}"))
    return 0
