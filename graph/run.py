"""The run assembler: everything a run opens, opened in one place and closed on every exit path.

:func:`execute` takes validated settings (a :class:`RunRequest`) and, in this order: takes the run
directory's lock and checks what the folder holds (a new run: an empty folder; a resume: a run of the
same settings, code, prompts and inputs), writes ``config.json`` (a new run), opens the checkpointer and
the evaluation cache, builds the reasoner and agents, the evaluator on its executor, the search session
and the recorder (bringing a resumed run's files in line with its checkpoint), the principle library,
the trace session and the progress bar; builds one frozen :class:`~lapt.graph.context.RunContext`;
streams the graph's updates into the recorder; writes the summary. An ``ExitStack`` closes what was
opened, in reverse order, however the run ends.

The graph state is the run's record (:mod:`lapt.graph.state`); the recorder is its one writer.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lapt.agents.reasoner import Reasoner
from lapt.errors import AgentFailure, EnvironmentFailure, UserError
from lapt.graph.assembly import build_agents, build_context, make_reasoner, prompts_for, search_session
from lapt.graph.build import build_graph
from lapt.graph.durable import CHECKPOINTS, EVAL_CACHE, LLM_CACHE, open_saver, thread_config
from lapt.graph.recorder import RunRecorder
from lapt.graph.routing import recursion_limit
from lapt.graph.tracing import open_trace, tracer_config
from lapt.principles.store import PrincipleProvenance
from lapt.runs.config import RunSettings, TrainSettings
from lapt.runs.directory import RunDirectory, atomic_write
from lapt.runs.identity import check_same_run, config_fingerprint, run_config
from lapt.runs.lock import RunLock
from lapt.runs.result import RunResult
from lapt.runs.summary import STOPPED_BY_LEARNER, summarize
from lapt.schemas import PrincipleSet, Trial
from lapt.search.metrics import metric_str
from lapt.spaces import SearchSpace
from lapt.tables.registry import evaluation_table
from lapt.tools.eval_cache import CachingEvaluator, EvalCache
from lapt.tools.evaluation import Evaluator
from lapt.tools.executors import make_evaluation, stop_on_sigint

LIBRARY_WAIT_S = 5.0
"""How long a run waits for a locked principle library (writers hold it for milliseconds)."""


@dataclass(frozen=True)
class RunRequest:
    """One run to execute (validated settings plus how to run them).

    Attributes:
        settings, space: the resolved settings and their search space.
        llm: LLM settings (with the API key) when the settings name an LLM reasoner.
        reasoner: a reasoner to use instead of the one the settings name (tests, embedders).
        run_dir: where to write the run, or None to keep it in memory.
        progress: show a progress bar on stderr.
        initial_principles: start from these principles instead of learning.
        evaluator: a custom evaluator instead of the settings' table or training evaluator.
        resume: continue the run ``run_dir`` holds (same settings and code) instead of refusing it.
        checkpoint: checkpoint the run (False only to measure what durability costs).
        trace: write ``trace.jsonl``.
        store: the principle library receiving every principle set (a path; None: the default library
            for runs with a run directory; False: none).
    """

    settings: RunSettings
    space: SearchSpace
    llm: Any = None
    reasoner: Reasoner | None = None
    run_dir: Path | None = None
    progress: bool = False
    initial_principles: PrincipleSet | None = None
    evaluator: Evaluator | None = None
    resume: bool = False
    checkpoint: bool = True
    trace: bool = True
    store: str | bool | None = None


def execute(request: RunRequest) -> RunResult:
    """Run ``request`` to its end (or continue it) and return what it produced.

    Raises:
        UserError: bad input found on the way (a folder holding something else, other settings, a key the
            LLM endpoint refuses...). A run directory this call created is removed if nothing was run.
        AgentFailure: the learner gave no principles and the settings say to stop; the run directory
            holds the record and a summary saying why.
    """
    prompts = prompts_for(request.settings)  # a bad prompt override is refused before anything is touched
    config = run_config(request.settings, prompts.hashes, request.initial_principles)
    w = RunDirectory(request.run_dir) if request.run_dir is not None else None
    created_here = w is not None and not w.path.exists()
    try:
        with contextlib.ExitStack() as stack:
            return _Run(request, prompts.hashes, config, w, stack).run(prompts)
    except UserError:
        if created_here and w is not None and not (w.path / "trials.jsonl").exists():
            # Bad input found by the first call (a wrong API key, an unknown model): leave nothing behind.
            shutil.rmtree(w.path, ignore_errors=True)
        raise


class _Run:
    """One execution: the parts it opened (registered on ``stack`` to be closed) and its record."""

    def __init__(
        self,
        request: RunRequest,
        hashes: dict[str, str],
        config: dict[str, Any],
        w: RunDirectory | None,
        stack: contextlib.ExitStack,
    ):
        self.request = request
        self.settings = request.settings
        self.space = request.space
        self.hashes = hashes
        self.config = config
        self.w = w
        self.stack = stack
        self.saver: Any = None
        self.cache: EvalCache | None = None
        self.values: dict[str, Any] = {}  # the latest checkpoint, when resuming
        self.status = "new"

    # -- opening ------------------------------------------------------------------------------------
    def _open_run_dir(self, w: RunDirectory) -> None:
        self.stack.enter_context(RunLock(w.path))
        self.stack.callback(w.close)
        r = self.request
        if r.resume and w.holds_run():
            stored = w.read_config()
            check_same_run(stored, self.config, w.path)
            path = w.path / CHECKPOINTS
            if path.exists():
                self.saver = open_saver(path)
                self.stack.callback(self.saver.close)
                if self.saver.read_meta("config_sha256") not in (None, config_fingerprint(stored)):
                    raise UserError(f"cannot resume {w.path}: config.json was changed after the run started")
                self.status = "resumed"
            elif (w.path / "trials.jsonl").exists():
                raise UserError(
                    f"cannot resume {w.path}: it has trials but no {CHECKPOINTS} (it ran without checkpoints)"
                )
        else:
            w.check_new()
            w.create(self.config)
        if self.saver is None and r.checkpoint:
            self.saver = open_saver(w.path / CHECKPOINTS)
            self.stack.callback(self.saver.close)
            self.saver.write_meta("config_sha256", config_fingerprint(self.config))
        if self.saver is not None:
            self.cache = EvalCache(w.path / EVAL_CACHE)
            self.stack.callback(self.cache.close)

    def _evaluator(self) -> Evaluator:
        evaluator, executor = make_evaluation(self.settings, self.request.evaluator)
        # Ctrl-C stops the executor at once, its close included (the handler goes after the close below).
        self.stack.enter_context(stop_on_sigint(executor))
        self.stack.callback(executor.close)
        return evaluator if self.cache is None else CachingEvaluator(evaluator, self.cache)

    # -- running ------------------------------------------------------------------------------------
    def run(self, prompts: Any) -> RunResult:
        r, s, w = self.request, self.settings, self.w
        if w is not None:
            self._open_run_dir(w)
        llm_cache = s.llm_cache or (str(w.path / LLM_CACHE) if w is not None else None)
        reasoner = r.reasoner or make_reasoner(r.llm, llm_cache)
        agents = build_agents(reasoner, prompts, s.top_k)
        evaluator = self._evaluator()
        if w is not None and s.evaluator == "train" and not (w.path / "split.json").exists():
            _save_split(w, s.train or TrainSettings())
        session = search_session(s, self.space)
        graph = build_graph(self.saver)
        finished = False
        if self.status == "resumed":
            snapshot = graph.get_state(thread_config())
            if snapshot.created_at is None:  # killed before the first checkpoint: start over
                self.status = "new"
            else:
                self.values = dict(snapshot.values)
                finished = not snapshot.next and bool(self.values.get("done"))
        bar = self._progress()
        recorder = RunRecorder(
            w,
            on_trials=bar.trials if bar is not None else None,
            on_principles=self._library(reasoner),
            on_failure=bar.failure if bar is not None else None,
        )
        self.stack.callback(recorder.close)
        if self.status == "resumed":
            recorder.resume(self.values)
            session.restore(recorder.trials, recorder.masks, self.values)
            if bar is not None:
                bar.start_at(len(recorder.trials))
        if finished and w is not None:
            stored = w.read_summary()
            if stored is not None:
                return self._result(recorder, stored)
        ctx = build_context(
            s, self.space, evaluator=evaluator, agents=agents, search=session, initial_principles=r.initial_principles
        )
        final = dict(self.values)
        start = time.perf_counter()
        trace = open_trace(w.path if r.trace and w is not None else None, s, r.llm)
        if trace is not None:
            trace.start()
            self.stack.callback(trace.close)
        config: dict[str, Any] = {
            "recursion_limit": recursion_limit(s.budget, s.adapt_every, s.batch_size),
            "max_concurrency": s.batch_size,  # the ToolNode submits a whole batch at once
            **tracer_config(trace),
        }
        initial: dict[str, Any] | None = None if self.status == "resumed" else {"n_trials": 0}
        if self.saver is not None:
            # Asynchronous checkpoints: the next step does not wait for the SQLite commit. A kill can lose
            # the last steps' checkpoints, never their evaluations or LLM answers (both caches commit as
            # they happen), and the recorder cuts files that ran ahead of the checkpoint back on resume.
            config = thread_config(config)
            stream = graph.stream(initial, config, context=ctx, stream_mode="updates", durability="async")
        else:
            stream = graph.stream(initial, config, context=ctx, stream_mode="updates")
        for chunk in stream:
            for update in chunk.values():
                if isinstance(update, dict):
                    recorder.apply(update)
                    final.update(update)
        if bar is not None:
            bar.close()
        table = evaluation_table(self.space, s.table) if s.evaluator == "table" else None
        trials = [Trial.model_validate(t) for t in recorder.trials]
        summary = summarize(s, self.space, trials, recorder.decisions, final, time.perf_counter() - start, table)
        if w is not None:
            w.write_summary(summary)
        result = self._result(recorder, summary)
        if final.get("done") == STOPPED_BY_LEARNER and s.on_agent_failure != "continue":
            raise AgentFailure(summary["degraded"][0], result=result)
        return result

    def _result(self, recorder: RunRecorder, summary: dict[str, Any]) -> RunResult:
        return RunResult(
            settings=self.settings,
            trials=[Trial.model_validate(t) for t in recorder.trials],
            principles=[PrincipleSet.model_validate(p) for p in recorder.principles],
            masks=list(recorder.masks),
            decisions=list(recorder.decisions),
            summary=summary,
            run_dir=self.w.path if self.w is not None else None,
            prompt_hashes=self.hashes,
        )

    # -- helpers ------------------------------------------------------------------------------------
    def _progress(self) -> _Progress | None:
        if not self.request.progress:
            return None
        bar = _Progress(self.settings.budget, f"lapt {self.space.name} {self.settings.target}")
        self.stack.callback(bar.close)
        return bar

    def _library(self, reasoner: Reasoner) -> Callable[[dict[str, Any]], None] | None:
        """A callback adding each principle set of the run to the library, or None when storing is off.

        The library is a convenience: if it cannot be written (read-only home, locked file, not a library)
        the run goes on and says so once, rather than failing hours of search; it waits at most
        :data:`LIBRARY_WAIT_S` for a lock, once, and stops trying after the first failure (each try would
        stall the run again). The run's principle sets are in its run directory either way.
        """
        store = self.request.store
        if store is False or (store is None and self.w is None):
            return None
        from lapt.principles.store import PrincipleStore

        library = PrincipleStore(None if store in (None, True) else str(store), busy_timeout_s=LIBRARY_WAIT_S)
        run_id = self.w.path.name if self.w is not None else ""
        where = f" (they are in {self.w.path})" if self.w is not None else ""
        parent: list[str] = []
        failed: list[bool] = []
        settings, space, hashes = self.settings, self.space, self.hashes
        model = getattr(reasoner, "model", "")

        def add(record: dict[str, Any]) -> None:
            if failed:
                return
            pset = PrincipleSet.model_validate(record)
            provenance = principle_provenance(pset, settings.reasoner, model, space, hashes, run_id, parent[-1:])
            try:
                parent.append(library.add(pset, provenance))
            except (sqlite3.Error, OSError, UserError, EnvironmentFailure) as e:
                failed.append(True)
                print(
                    f"lapt: warning: principle library {library.path} not updated, this run's principle sets are "
                    f"not stored in it{where}: {e}",
                    file=sys.stderr,
                )

        return add


def principle_provenance(
    pset: PrincipleSet,
    reasoner: str,
    model: str,
    space: SearchSpace,
    hashes: Mapping[str, str],
    run_id: str,
    parent: Sequence[str] = (),
) -> PrincipleProvenance:
    """Where a principle set came from, as the principle library records it."""
    return PrincipleProvenance(
        space=getattr(space, "ref", None) or space.name,
        source_tasks=pset.tasks_seen,
        reasoner=reasoner,
        model=model,
        prompt_hashes=dict(hashes),
        run_id=run_id,
        parent_id=parent[-1] if parent else None,
    )


class _Progress:
    """The progress bar of a run: evaluations done, the last value, agent decisions that failed."""

    def __init__(self, total: int, desc: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="eval", leave=True)
        self.failed = 0
        self.last: float | None = None

    def start_at(self, done: int) -> None:
        self.bar.n = done
        self.bar.refresh()

    def trials(self, batch: Sequence[dict[str, Any]]) -> None:
        self.bar.update(len(batch))
        vals = [t.get("val") for t in batch if t.get("val") is not None]
        if vals:
            self.last = vals[-1]
        self._postfix()

    def failure(self, decision: dict[str, Any]) -> None:
        self.failed += 1
        self.bar.write(
            f"lapt: {decision.get('agent')} gave no valid answer: {decision.get('error') or decision.get('note')}"
        )
        self._postfix()

    def _postfix(self) -> None:
        post = {}
        if self.last is not None:
            post["last"] = metric_str(self.last, 2)
        if self.failed:
            post["failed decisions"] = str(self.failed)
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _save_split(w: RunDirectory, train: TrainSettings) -> None:
    """Save the fixed train/validation/test split of a training run (indices into the dataset)."""
    from lapt.tools.train.datasets import split_indices

    split = split_indices(train.dataset, train.data_dir, 0, train.max_train_images)
    payload = {"dataset": train.dataset, "split_seed": 0, **split}
    atomic_write(w.path / "split.json", json.dumps(payload) + "\n")
