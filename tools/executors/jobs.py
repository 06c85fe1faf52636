"""What an executor runs: a job (space, architecture, task, evaluator) and how a worker rebuilds it.

Evaluators hold tables and datasets that are costly to ship, so a job names its evaluator by an
:class:`EvaluatorSpec` (an importable factory plus JSON settings) and every worker process builds it
once and keeps it. A live evaluator object may be put in a job instead (a custom evaluator passed to
the Python API); it then travels by pickling, which the in-process executors never need.
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from lapt.spaces import get_space
from lapt.tools.evaluation import Evaluator, Outcome, TabularEvaluator


@dataclass(frozen=True)
class EvaluatorSpec:
    """How to rebuild an evaluator in a worker: ``factory(**kwargs)``.

    Attributes:
        factory: ``"package.module:callable"`` (a class or a function returning an evaluator); it is
            imported, never evaluated as code.
        kwargs: JSON-serialisable keyword arguments.
    """

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """A stable identity for the per-process memo."""
        return json.dumps([self.factory, self.kwargs], sort_keys=True, default=str)


@dataclass(frozen=True)
class Job:
    """One evaluation to run somewhere.

    Attributes:
        space: the name (or space-file path) that :func:`lapt.spaces.get_space` resolves in the worker.
        arch: the architecture string of the space.
        task: the task to score on.
        evaluator: an :class:`EvaluatorSpec`, or a picklable evaluator object.
    """

    space: str
    arch: str
    task: str
    evaluator: Any


_BUILT: dict[str, Evaluator] = {}
_BUILT_LOCK = threading.Lock()


def _import(path: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"evaluator factory must be 'module:callable', got {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def build_evaluator(spec: EvaluatorSpec) -> Evaluator:
    """The evaluator of ``spec``, built once per process (tables and datasets load once per worker)."""
    key = spec.key()
    with _BUILT_LOCK:
        built = _BUILT.get(key)
        if built is None:
            built = _import(spec.factory)(**spec.kwargs)
            _BUILT[key] = built
    return built


def resolve(evaluator: Any) -> Evaluator:
    """A job's evaluator as an object: built from its spec, or the object itself."""
    if isinstance(evaluator, EvaluatorSpec):
        return build_evaluator(evaluator)
    return evaluator


def run_job(job: Job) -> Outcome:
    """Evaluate one job in this process (the function every executor runs in its workers).

    Raises whatever the evaluator raises: the executor decides what a lost evaluation becomes.
    """
    space = get_space(job.space)
    return resolve(job.evaluator).evaluate(space, space.from_str(job.arch), job.task)


def table_evaluator(space: str, table: str | None = None) -> TabularEvaluator:
    """Factory for specs: the benchmark-table evaluator of ``space`` (as ``lapt run`` builds it)."""
    return TabularEvaluator.for_space(get_space(space), table)


def table_spec(space: str, table: str | None = None) -> EvaluatorSpec:
    """The spec of :func:`table_evaluator`."""
    return EvaluatorSpec(f"{__name__}:table_evaluator", {"space": space, "table": table})
