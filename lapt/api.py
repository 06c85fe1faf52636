"""The Python API and composition root: settings in, a finished run (and its run directory) out.

>>> import lapt
>>> result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=20, seed=0)
>>> result.summary["best"]["test"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lapt.config import RunSettings, parse_settings, space_defaults
from lapt.errors import UserError
from lapt.evaluator_choice import choose_evaluator
from lapt.metrics import evals_to_reach, incumbent_curve, thresholds
from lapt.run_dir import RunDirectory, default_run_dir
from lapt.schemas import PrincipleSet, Trial
from lapt.spaces import SearchSpace, get_space


@dataclass
class RunResult:
    """What a run produced (the same facts as its run directory)."""

    settings: RunSettings
    trials: list[Trial]
    principles: list[PrincipleSet]
    masks: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    summary: dict[str, Any]
    run_dir: Path | None = None
    prompt_hashes: dict[str, str] = field(default_factory=dict)


def target_table(space: SearchSpace, settings: RunSettings) -> Any:
    """The benchmark table used for the target task (None when evaluating by training)."""
    if settings.evaluator != "table":
        return None
    from lapt.tools.evaluation import TabularEvaluator

    return TabularEvaluator.for_space(space, settings.table).table


def make_reasoner(settings: RunSettings, llm: Any = None) -> Any:
    """The offline miner, or the LLM reasoner when ``llm`` (an LLMSettings) is given.

    The LLM's answers are cached by exact request in ``settings.llm_cache`` when set (``build_context``
    defaults it to ``<run dir>/llm_cache.sqlite``), so a resumed or repeated run never pays twice.
    """
    if llm is None:
        from lapt.agents.offline import OfflineReasoner

        return OfflineReasoner()
    from lapt.agents.llm import LLMReasoner
    from lapt.llm_cache import ResponseCache

    return LLMReasoner(llm, cache=ResponseCache(settings.llm_cache) if settings.llm_cache else None)


def resolve_settings(**values: Any) -> tuple[RunSettings, SearchSpace]:
    """Validate settings and fill the per-space defaults; UserError on any problem."""
    if values.get("adapt") is False and values.get("adapt_every") is not None:
        raise UserError("--no-adapt contradicts --adapt-every: a run that never adapts has no adaptation interval")
    settings = parse_settings(**values)
    space = get_space(settings.space)
    settings = settings.resolved(space_defaults(space))
    if settings.evaluator_path is None or settings.evaluator is None:
        evaluator, path = choose_evaluator(space, settings.evaluator)
        settings = settings.model_copy(update={"evaluator": evaluator, "evaluator_path": path})
    if settings.tournament and settings.population and settings.tournament > settings.population:
        raise UserError(
            f"tournament ({settings.tournament}) cannot exceed population ({settings.population} on {space.name})"
        )
    if settings.evaluator == "table":
        table = target_table(space, settings)
        table.check_task(settings.target)
        for src in settings.sources:
            table.check_task(src)
    elif settings.sources:
        from lapt.tables import table_for

        source_table = table_for(space)
        if source_table is None:
            raise UserError(f"space {space.name} has no benchmark table to learn principles from: pass --principles")
        for src in settings.sources:
            source_table.check_task(src)
    if not settings.sources and settings.principles_from is None:
        raise UserError("give at least one --source task (or --principles to start from stored principles)")
    return settings, space


def build_context(
    settings: RunSettings,
    space: SearchSpace,
    llm: Any = None,
    initial_principles: PrincipleSet | None = None,
    evaluator: Any = None,
    run_dir: Path | None = None,
) -> tuple[Any, dict[str, str]]:
    """Wire reasoner, prompts, agents and evaluator into a RunContext; returns (context, prompt hashes)."""
    from lapt.agents.adapter import make_adapter
    from lapt.agents.learner import SourceData, make_principle_learner
    from lapt.agents.prompts import load_prompts
    from lapt.agents.refiner import make_space_refiner
    from lapt.graph.context import RunContext
    from lapt.tools.evaluation import TabularEvaluator

    prompts = load_prompts(Path(settings.prompts_dir) if settings.prompts_dir else None)
    # LLM answers are cached in the run directory unless the settings name a shared cache (benches).
    in_run_dir = {"llm_cache": str(run_dir / "llm_cache.sqlite")} if run_dir is not None else {}
    reasoner = make_reasoner(settings if settings.llm_cache else settings.model_copy(update=in_run_dir), llm)
    from lapt.tools.executors import make_evaluation

    # The evaluator runs on the executor the settings name (in this process by default).
    evaluator, executor = make_evaluation(settings, evaluator)
    source_table = TabularEvaluator.for_space(space, settings.table).table if settings.sources else None

    def sources() -> list[SourceData]:
        # Only the source tasks' columns leave the table: the learner never sees the target.
        if source_table is None:
            raise UserError(f"space {space.name} has no table to learn principles from; pass --principles")
        # Fitness (higher is better) of the architectures the table holds, whatever the metric's direction.
        return [SourceData(t, *source_table.measured(t)) for t in settings.sources]

    ctx = RunContext(
        settings=settings,
        space=space,
        evaluator=evaluator,
        learner=make_principle_learner(reasoner, prompts, settings.top_k),
        refiner=make_space_refiner(reasoner, prompts),
        adapter=make_adapter(reasoner, prompts),
        sources=sources,
        initial_principles=initial_principles,
        executor=executor,
    )
    return ctx, prompts.hashes


def summarize(
    settings: RunSettings, space: SearchSpace, state: dict[str, Any], wall_s: float, table: Any = None
) -> dict[str, Any]:
    """summary.json: best architecture, metrics, evaluations to the optimum / top-0.1 %, LLM usage."""
    trials = [Trial.model_validate(t) for t in state.get("trials", [])]
    curve = incumbent_curve(trials)
    best = curve[-1] if curve else None
    out: dict[str, Any] = {
        "space": space.name,
        "sources": settings.sources,
        "target": settings.target,
        "seed": settings.seed,
        "budget": settings.budget,
        "evaluations": len(trials),
        "failed": sum(t.fitness is None for t in trials),
        "ended": state.get("done"),
        "best": None if best is None else {"arch": best.arch, "val": best.val, "test": best.test, "index": best.index},
        "usage": state.get("usage") or {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0},
        "adaptations": state.get("round", 0),
        "wall_s": round(wall_s, 3),
    }
    if table is not None:
        optimum, top = thresholds(table.fitness(settings.target))
        out["evals_to_optimum"] = evals_to_reach(trials, optimum)
        out["evals_to_top0.1%"] = evals_to_reach(trials, top)
        out["optimum_val"] = optimum if space.higher_is_better else -optimum
    return out


def run(
    space: str = "nb201",
    sources: Sequence[str] = ("cifar10",),
    target: str = "cifar100",
    budget: int = 20,
    seed: int = 0,
    *,
    llm: Any = None,
    run_dir: str | Path | bool | None = False,
    progress: bool = False,
    initial_principles: PrincipleSet | None = None,
    evaluator: Any = None,
    resume: bool = False,
    trace: bool = True,
    **settings: Any,
) -> RunResult:
    """Run LAPT end to end: learn principles, refine the space, search, adapt, until the budget is spent.

    Args:
        space, sources, target, budget, seed: the run; see :class:`~lapt.config.RunSettings` for the rest.
        llm: an :class:`~lapt.agents.llm.LLMSettings` to use a language model; None for the offline miner.
        run_dir: where to write the run (a path), a new folder under ``./runs`` (None), or nowhere (False).
        progress: show a progress bar on stderr.
        initial_principles: start from these principles instead of learning.
        evaluator: a custom evaluator object, or the name of one as ``--evaluator`` takes it ("table",
            "train", "python:MODULE:FUNCTION", "python"); default: the space's table, else its own evaluator.
        resume: if ``run_dir`` already holds this run (same settings and code), continue it from its last
            checkpoint instead of refusing the folder.
        trace: write the decision trace (``trace.jsonl``, LangSmith run format) in the run directory.
    """
    if isinstance(evaluator, str):  # a setting ("table", "train", "python:MODULE:FUNCTION"), not an object
        settings["evaluator"], evaluator = evaluator, None
    values = {"space": space, "sources": list(sources), "target": target, "budget": budget, "seed": seed, **settings}
    if llm is not None:
        values.setdefault("reasoner", "llm")
        values["llm"] = llm.public()
    if initial_principles is not None:
        values.setdefault("principles_from", initial_principles.source)
    resolved, sp = resolve_settings(**values)
    return execute(
        resolved,
        sp,
        llm=llm,
        run_dir=run_dir,
        progress=progress,
        initial_principles=initial_principles,
        evaluator=evaluator,
        resume=resume,
        trace=trace,
    )


def execute(
    settings: RunSettings,
    space: SearchSpace,
    *,
    llm: Any = None,
    run_dir: str | Path | bool | None = False,
    progress: bool = False,
    initial_principles: PrincipleSet | None = None,
    evaluator: Any = None,
    resume: bool = False,
    checkpoint: bool = True,
    trace: bool = True,
    store: str | bool | None = None,
) -> RunResult:
    """Run validated settings through the graph (see :func:`run`).

    ``store`` is the principle library that receives every learned or adapted principle set: a path,
    None for the default library (only for runs with a run directory), or False for none.

    With a run directory the run is durable (:mod:`lapt.graph.durable`): locked against a second
    process, checkpointed after every step, and with ``resume`` continued from its last checkpoint.
    ``checkpoint=False`` runs without checkpoints or evaluation cache (only to measure their cost).
    With a run directory and ``trace`` the run's decisions are traced (:mod:`lapt.graph.tracing`).
    """
    from lapt.graph.durable import open_durable
    from lapt.graph.routing import recursion_limit
    from lapt.graph.tracing import open_trace, tracer_config
    from lapt.run_identity import run_config

    writer: RunDirectory | None = None
    if run_dir is not False:
        writer = RunDirectory(Path(run_dir) if run_dir not in (None, True) else default_run_dir())  # type: ignore[arg-type]
    ctx, hashes = build_context(
        settings, space, llm, initial_principles, evaluator, run_dir=writer.path if writer is not None else None
    )
    config = run_config(settings, hashes, initial_principles)
    created_here = writer is not None and not resume and not writer.path.exists()
    refused: BaseException | None = None
    durable = open_durable(ctx, writer, config, resume=resume, checkpoint=checkpoint)
    if writer is not None and settings.evaluator == "train" and not (writer.path / "split.json").exists():
        _save_split(writer, settings.train or {})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=settings.budget,
            initial=durable.trials_done,
            desc=f"lapt {space.name} {settings.target}",
            unit="eval",
            leave=True,
        )

    def on_trial(trial: Trial) -> None:
        if writer is not None:
            writer.append("trials.jsonl", [trial.model_dump(mode="json")])
        if bar is not None:
            bar.update(1)
            if trial.val is not None:
                bar.set_postfix(last=f"{trial.val:.2f}")

    library = _principle_library(store, writer, settings, space, llm, hashes)

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "principles" and library is not None:
            library(payload)
        if writer is None:
            return
        if kind == "principles":
            writer.write_principles(payload)
        elif kind == "mask":
            writer.write_mask(payload)
        elif kind == "decision":
            writer.append("decisions.jsonl", [payload])

    ctx.on_trial = on_trial
    ctx.on_event = on_event
    session = open_trace(writer.path if trace and writer is not None else None, settings, llm)
    if session is not None:
        session.instrument(ctx)
        session.start()
    start = time.perf_counter()
    try:
        state = durable.invoke(
            ctx,
            {"trials": [], "decisions": []},
            config={
                "recursion_limit": recursion_limit(settings.budget, settings.adapt_every, settings.batch_size),
                "max_concurrency": settings.batch_size,  # the ToolNode submits a whole batch at once
                **tracer_config(session),
            },
        )
    except BaseException as exc:
        durable.close()  # releases the run directory's lock (finish() does it on success)
        refused = exc
        raise
    finally:
        if bar is not None:
            bar.close()
        ctx.executor.close()
        if session is not None:
            session.close()  # trace.jsonl is complete from here on
        if created_here and isinstance(refused, UserError) and writer is not None and not _has_trials(writer.path):
            # Bad input found by the first call (a wrong API key, an unknown model): leave nothing behind.
            shutil.rmtree(writer.path, ignore_errors=True)
    table = target_table(space, settings)
    summary = summarize(settings, space, state, time.perf_counter() - start, table)
    summary = durable.finish(state, summary)
    return RunResult(
        settings=settings,
        trials=[Trial.model_validate(t) for t in state.get("trials", [])],
        principles=[PrincipleSet.model_validate(p) for p in state.get("principles", [])],
        masks=state.get("masks", []),
        decisions=state.get("decisions", []),
        summary=summary,
        run_dir=writer.path if writer is not None else None,
        prompt_hashes=hashes,
    )


def _has_trials(path: Path) -> bool:
    trials = path / "trials.jsonl"
    return trials.exists() and trials.stat().st_size > 0


def _save_split(writer: RunDirectory, train: dict[str, Any]) -> None:
    """Save the fixed train/validation/test split of a training run (indices into the dataset)."""
    from lapt.run_dir import atomic_write
    from lapt.tools.train.datasets import split_indices

    split = split_indices(train.get("dataset", "mnist5k"), train.get("data_dir"), 0, train.get("max_train_images"))
    payload = {"dataset": train.get("dataset", "mnist5k"), "split_seed": 0, **split}
    atomic_write(writer.path / "split.json", json.dumps(payload) + "\n")


def principle_provenance(
    pset: PrincipleSet,
    settings: RunSettings,
    space: SearchSpace,
    llm: Any,
    hashes: dict[str, str],
    run_id: str,
    parent_id: str | None = None,
) -> Any:
    """Where a principle set came from, as the principle library records it."""
    from lapt.principle_store import PrincipleProvenance

    return PrincipleProvenance(
        space=getattr(space, "ref", None) or space.name,
        source_tasks=pset.tasks_seen,
        reasoner=settings.reasoner,
        model=llm.model if llm is not None else "enrichment-miner",
        prompt_hashes=hashes,
        run_id=run_id,
        parent_id=parent_id,
    )


def _principle_library(
    store: str | bool | None,
    writer: RunDirectory | None,
    settings: RunSettings,
    space: SearchSpace,
    llm: Any,
    hashes: dict[str, str],
) -> Any:
    """A callback adding each principle set of the run to the library, or None when storing is off.

    The library is a convenience: if it cannot be written (read-only home, locked file) the run goes on
    and says so once, rather than failing hours of search.
    """
    if store is False or (store is None and writer is None):
        return None
    import sqlite3
    import sys

    from lapt.principle_store import PrincipleStore

    library = PrincipleStore(None if store in (None, True) else str(store))
    parent: list[str] = []
    warned: list[bool] = []

    def add(payload: dict[str, Any]) -> None:
        pset = PrincipleSet.model_validate(payload)
        run_id = writer.path.name if writer is not None else ""
        provenance = principle_provenance(pset, settings, space, llm, hashes, run_id, parent[-1] if parent else None)
        try:
            parent.append(library.add(pset, provenance))
        except (sqlite3.Error, OSError) as e:
            if not warned:
                print(f"lapt: warning: principle library {library.path} not updated: {e}", file=sys.stderr)
                warned.append(True)

    return add


def resume(run_dir: str | Path, *, llm: Any = None, progress: bool = False, evaluator: Any = None) -> RunResult:
    """Continue a killed run from its last checkpoint, with the settings in its ``config.json``.

    Refused (UserError, nothing written) when another process holds the folder, or when the lapt
    version, the package source, the prompt files or the config changed since the run started. An LLM
    run needs its API key in ``OPENAI_API_KEY`` again (keys are never saved). A finished run is
    returned as it is.
    """
    from lapt.run_identity import read_stored_run

    path = Path(run_dir)
    stored = read_stored_run(RunDirectory(path).read_config(), path)
    settings = stored.settings
    space = get_space(settings.space)
    if settings.evaluator == "table":
        target_table(space, settings).check_task(settings.target)
    if llm is None and settings.llm is not None:
        llm = _llm_from_public(settings.llm)
    return execute(
        settings,
        space,
        llm=llm,
        run_dir=path,
        progress=progress,
        initial_principles=stored.initial_principles,
        evaluator=evaluator,
        resume=True,
    )


def _llm_from_public(public: dict[str, Any]) -> Any:
    """LLMSettings from what a run directory recorded, with the key from the environment."""
    import dataclasses
    import os

    from pydantic import SecretStr

    from lapt.agents.llm import LLMSettings

    known = {f.name for f in dataclasses.fields(LLMSettings)}
    key = os.environ.get("OPENAI_API_KEY")
    if not key and not public.get("base_url"):
        raise UserError("this run used the OpenAI API: set OPENAI_API_KEY to resume it (keys are never saved)")
    return LLMSettings(
        **{k: v for k, v in public.items() if k in known and k != "api_key"},
        api_key=SecretStr(key) if key else None,
    )


def dumps(obj: Any) -> str:
    """JSON for terminals."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
