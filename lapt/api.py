"""The Python API: settings in, a finished run (and its run directory) out.

>>> import lapt
>>> result = lapt.run(space="nb201", sources=["cifar10"], target="cifar100", budget=20, seed=0)
>>> result.summary["best"]["test"]  # doctest: +SKIP

A thin facade: settings are validated here (:func:`lapt.runs.config.resolve_settings`) and the run is put
together and executed by :mod:`lapt.graph.run`. ``reasoner=`` is the seam for embedders and tests: any
object with ``complete(AgentRequest) -> AgentReply`` answers the agents instead of the offline miner or
an LLM.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lapt.errors import UserError
from lapt.runs.config import RunSettings, resolve_settings
from lapt.runs.directory import RunDirectory, default_run_dir
from lapt.runs.result import RunResult
from lapt.schemas import PrincipleSet
from lapt.spaces import SearchSpace, get_space
from lapt.tables.registry import evaluation_table

if TYPE_CHECKING:
    from lapt.agents.reasoner import Reasoner
    from lapt.tools.evaluation import Evaluator

__all__ = ["RunResult", "dumps", "execute", "resolve_settings", "resume", "run"]


def run(
    space: str = "nb201",
    sources: Sequence[str] = ("cifar10",),
    target: str = "cifar100",
    budget: int = 20,
    seed: int = 0,
    *,
    llm: Any = None,
    reasoner: Reasoner | None = None,
    run_dir: str | Path | bool | None = False,
    progress: bool = False,
    initial_principles: PrincipleSet | None = None,
    evaluator: Evaluator | str | None = None,
    resume: bool = False,
    trace: bool = True,
    store: str | bool | None = None,
    **settings: Any,
) -> RunResult:
    """Run LAPT end to end: learn principles, refine the space, search, adapt, until the budget is spent.

    Args:
        space, sources, target, budget, seed: the run; see :class:`~lapt.runs.config.RunSettings` for the rest.
        llm: an :class:`~lapt.agents.llm.LLMSettings` to use a language model; None for the offline miner.
        reasoner: answer the agents with this reasoner instead (it is not recorded in the settings).
        run_dir: where to write the run (a path), a new folder under ``./runs`` (None or True), or nowhere
            (False).
        progress: show a progress bar on stderr.
        initial_principles: start from these principles instead of learning.
        evaluator: a custom evaluator object, or the evaluator setting (``"table"``, ``"train"``,
            ``"python:MODULE:FUNCTION"``); default: the space's table, else the evaluator its file names.
        resume: if ``run_dir`` already holds this run (same settings and code), continue it from its last
            checkpoint instead of refusing the folder.
        trace: write the decision trace (``trace.jsonl``, LangSmith run format) in the run directory.
        store: the principle library for the run's principle sets (a path; None: the default one when
            the run has a run directory; False: none).

    Raises:
        UserError: bad input (one line says what).
        AgentFailure: the learner gave no principles and ``on_agent_failure`` is ``"stop"``, or is
            ``"fallback"`` (the default) and the offline miner gave none either.
    """
    values = {"space": space, "sources": list(sources), "target": target, "budget": budget, "seed": seed, **settings}
    if isinstance(evaluator, str):  # a setting ("table", "train", "python:MODULE:FUNCTION"), not an object
        values["evaluator"], evaluator = evaluator, None
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
        reasoner=reasoner,
        run_dir=run_dir,
        progress=progress,
        initial_principles=initial_principles,
        evaluator=evaluator,
        resume=resume,
        trace=trace,
        store=store,
    )


def execute(
    settings: RunSettings,
    space: SearchSpace,
    *,
    llm: Any = None,
    reasoner: Reasoner | None = None,
    run_dir: str | Path | bool | None = False,
    progress: bool = False,
    initial_principles: PrincipleSet | None = None,
    evaluator: Evaluator | None = None,
    resume: bool = False,
    checkpoint: bool = True,
    trace: bool = True,
    store: str | bool | None = None,
) -> RunResult:
    """Run validated settings (see :func:`run`; ``checkpoint=False`` only measures what durability costs)."""
    from lapt.graph.run import RunRequest
    from lapt.graph.run import execute as execute_request

    # Paths are made absolute once, here: an evaluator may os.chdir() while the run writes its files.
    path: Path | None = None
    if run_dir is not False:
        path = Path(os.path.abspath(default_run_dir() if run_dir in (None, True) else Path(str(run_dir))))
    if isinstance(store, str | Path):
        store = os.path.abspath(Path(store).expanduser())
    request = RunRequest(
        settings=settings,
        space=space,
        llm=llm,
        reasoner=reasoner,
        run_dir=path,
        progress=progress,
        initial_principles=initial_principles,
        evaluator=evaluator,
        resume=resume,
        checkpoint=checkpoint,
        trace=trace,
        store=store,
    )
    return execute_request(request)


def resume(
    run_dir: str | Path,
    *,
    llm: Any = None,
    reasoner: Reasoner | None = None,
    progress: bool = False,
    evaluator: Evaluator | None = None,
    llm_base_url: str | None = None,
    llm_options: dict[str, Any] | None = None,
) -> RunResult:
    """Continue a killed run from its last checkpoint, with the settings in its ``config.json``.

    Refused (UserError, nothing written) when another process holds the folder, or when the lapt
    version, the package source, the prompt files, the config or the run's inputs changed since the run
    started. An LLM run needs its API key in ``OPENAI_API_KEY`` again (keys are never saved), and, when
    its server URL held a password (recorded redacted), the URL again: ``llm_base_url`` or
    ``OPENAI_BASE_URL``; and its secret options (``api_key=...``, recorded redacted) again, in
    ``llm_options``. A finished run is returned as it is.
    """
    from lapt.runs.identity import read_stored_run

    path = Path(os.path.abspath(run_dir))
    stored = read_stored_run(RunDirectory(path).read_config(), path)
    settings = stored.settings
    space = get_space(settings.space)
    if settings.evaluator == "table":
        evaluation_table(space, settings.table).check_task(settings.target)
    if llm is None and reasoner is None and settings.llm is not None:
        llm = _llm_from_public(settings.llm, llm_base_url, llm_options or {})
    elif llm_options:
        raise UserError("--llm-option: this run used no LLM")
    return execute(
        settings,
        space,
        llm=llm,
        reasoner=reasoner,
        run_dir=path,
        progress=progress,
        initial_principles=stored.initial_principles,
        evaluator=evaluator,
        resume=True,
    )


def _llm_from_public(config: Any, base_url: str | None = None, secret_options: dict[str, Any] | None = None) -> Any:
    """LLMSettings from the LLMConfig a run directory recorded, with the key (and URL) from the environment.

    ``base_url`` (an option) must be the URL the run used; ``OPENAI_BASE_URL`` is only consulted when
    the recorded URL lost its password. ``secret_options`` are the values of the options recorded as
    ``[redacted]``: every one of them, and nothing else.
    """
    given = dict(secret_options or {})
    redacted = config.redacted_options
    missing = [k for k in redacted if k not in given]
    if missing:
        raise UserError(
            f"this run's --llm-option {', '.join(missing)} was recorded redacted: give it again "
            f"(lapt resume --llm-option {missing[0]}=VALUE)"
        )
    others = sorted(set(given) - set(redacted))
    if others:
        raise UserError(f"--llm-option {', '.join(others)}: a resume takes only the run's redacted options "
                        f"({', '.join(redacted) or 'none'}); the others are in its config.json")
    if given:
        config = config.model_copy(update={"options": {**config.options, **given}})  # not re-validated: not redacted

    from pydantic import SecretStr

    from lapt.agents.llm import LLMSettings
    from lapt.llm.redaction import redact_url

    key = os.environ.get("OPENAI_API_KEY")
    if not key and not config.base_url:
        raise UserError("this run used the OpenAI API: set OPENAI_API_KEY to resume it (keys are never saved)")
    if base_url is not None and redact_url(base_url) != config.base_url:
        used = config.base_url or "the OpenAI API"
        raise UserError(f"--llm-base-url {redact_url(base_url)} is not the URL this run used ({used})")
    url = base_url or (os.environ.get("OPENAI_BASE_URL") or None if config.url_was_redacted else None)
    return LLMSettings.from_config(config, SecretStr(key) if key else None, url)


def dumps(obj: Any) -> str:
    """JSON for terminals."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
