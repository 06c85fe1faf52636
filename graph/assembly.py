"""The parts of a run, built once each: reasoner, agents, source data, search session, run context.

:func:`build_agents` is all ``lapt learn`` needs (no evaluator, no executor, no target); the runner
(:mod:`lapt.graph.run`) adds the evaluator and the search and freezes them into one
:class:`~lapt.graph.context.RunContext`. The reasoner is a seam: an embedder or a test passes its own
(anything with ``complete(AgentRequest) -> AgentReply``), otherwise the settings choose the offline
miner or an OpenAI-compatible LLM.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lapt.agents.adapter import make_adapter
from lapt.agents.learner import SourceData, make_principle_learner
from lapt.agents.prompts import PromptSet, load_prompts
from lapt.agents.reasoner import Reasoner
from lapt.agents.refiner import make_space_refiner
from lapt.errors import UserError
from lapt.graph.context import Agents, RunContext
from lapt.graph.tracing import traced_agent
from lapt.runs.config import RunSettings
from lapt.schemas import PrincipleSet
from lapt.search.session import SearchParams, SearchSession
from lapt.spaces import SearchSpace
from lapt.tables.base import BenchmarkTable
from lapt.tables.registry import table_for
from lapt.tools.evaluation import Evaluator


def prompts_for(settings: RunSettings) -> PromptSet:
    """The shipped prompts with the run's overrides (UserError for a bad override folder or file)."""
    return load_prompts(Path(settings.prompts_dir) if settings.prompts_dir else None)


def make_reasoner(llm: Any = None, cache_path: Path | str | None = None) -> Reasoner:
    """The offline miner, or the LLM reasoner when ``llm`` (an LLMSettings with its key) is given.

    The LLM's answers are cached by exact request in ``cache_path`` when given (a run directory's
    ``llm_cache.sqlite``, or a bench's shared cache), so a resumed or repeated run never pays twice.
    """
    if llm is None:
        from lapt.agents.offline import OfflineReasoner

        return OfflineReasoner()
    from lapt.agents.llm import LLMReasoner
    from lapt.llm.cache import ResponseCache

    return LLMReasoner(llm, cache=ResponseCache(cache_path) if cache_path else None)


def build_agents(reasoner: Reasoner, prompts: PromptSet, top_k: int = 50) -> Agents:
    """The principle learner, space refiner and adapter around ``reasoner``, each traced as ``agent:*``.

    Beside any reasoner but the offline miner, the miner's learner and refiner stand by as fallbacks
    (traced as ``agent:learner_fallback`` and ``agent:refiner_fallback`` when used).
    """
    fallback_learner = fallback_refiner = None
    if reasoner.name != "offline":
        from lapt.agents.offline import OfflineReasoner

        miner = OfflineReasoner()
        fallback_learner = traced_agent("agent:learner_fallback", make_principle_learner(miner, prompts, top_k))
        fallback_refiner = traced_agent("agent:refiner_fallback", make_space_refiner(miner, prompts))
    return Agents(
        learner=traced_agent("agent:learner", make_principle_learner(reasoner, prompts, top_k)),
        refiner=traced_agent("agent:refiner", make_space_refiner(reasoner, prompts)),
        adapter=traced_agent("agent:adapter", make_adapter(reasoner, prompts)),
        fallback_learner=fallback_learner,
        fallback_refiner=fallback_refiner,
    )


def source_table(space: SearchSpace) -> BenchmarkTable:
    """The table principles are learned from (the space's own); UserError when the space has none."""
    table = table_for(space)
    if table is None:
        raise UserError(f"space {space.name} has no table to learn principles from; pass --principles")
    return table


def source_data(space: SearchSpace, tasks: Sequence[str]) -> list[SourceData]:
    """The source tasks' measured architectures and their fitness: only their columns leave the table, so
    the learner never sees the target."""
    table = source_table(space)
    return [SourceData(t, *table.measured(t)) for t in tasks]


def search_session(settings: RunSettings, space: SearchSpace) -> SearchSession:
    """A new search session for the run's strategy and seed."""
    params = SearchParams(
        settings.strategy, settings.seed, settings.population, settings.tournament, escape=settings.escape
    )
    return SearchSession(space, params)


def build_context(
    settings: RunSettings,
    space: SearchSpace,
    *,
    evaluator: Evaluator,
    agents: Agents,
    search: SearchSession,
    initial_principles: PrincipleSet | None = None,
) -> RunContext:
    """The frozen run context of one run."""
    # Loaded on first use (a run from given principles may never need them), then kept: the target
    # evidence reads the same columns at every adaptation.
    sources: Callable[[], Sequence[SourceData]] = functools.cache(
        functools.partial(source_data, space, tuple(settings.sources))
    )
    return RunContext(
        settings=settings,
        space=space,
        evaluator=evaluator,
        agents=agents,
        sources=sources,
        search=search,
        initial_principles=initial_principles,
    )
