"""Executors: where evaluations run (this process, threads, spawned processes, or Ray).

    executor = make_executor("processes", workers=2)
    outcomes = executor.map([Job("nb201", arch, "cifar100", table_spec("nb201")) for arch in archs])

Every executor keeps the same contract (see :mod:`lapt.tools.executors.base`): outcomes in job order,
identical to the ``local`` executor's for a deterministic evaluator, lost jobs retried once.
"""

from __future__ import annotations

import pickle
from typing import Any

from lapt.errors import UserError
from lapt.runs.config import RunSettings, TrainSettings
from lapt.tools.evaluation import Evaluator
from lapt.tools.executors.base import Executor, available_cores, stop_on_sigint
from lapt.tools.executors.calls import Interrupted
from lapt.tools.executors.evaluator import ExecutorEvaluator
from lapt.tools.executors.jobs import EvaluatorSpec, Job, build_evaluator, run_job, table_spec
from lapt.tools.executors.local import LocalExecutor, ThreadExecutor
from lapt.tools.executors.processes import ProcessExecutor
from lapt.tools.train_adapter import check_trainable, check_user_network

EXECUTORS = ("local", "threads", "processes", "ray")

__all__ = [
    "EXECUTORS",
    "EvaluatorSpec",
    "Executor",
    "ExecutorEvaluator",
    "Interrupted",
    "Job",
    "build_evaluator",
    "check_evaluation",
    "check_executor",
    "function_spec",
    "make_evaluation",
    "make_executor",
    "run_job",
    "stop_on_sigint",
    "table_spec",
]


def check_executor(name: str, workers: int | None = None, timeout_s: float | None = None) -> None:
    """Refuse (UserError) what :func:`make_executor` would refuse, without starting anything.

    ``threads`` and ``processes`` refuse more workers than cores (workers x torch threads must stay
    within the cores, or training slows many times over); ``ray`` needs the optional extra, and takes no
    time limit per evaluation (Ray's own task options are the place for one).
    """
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
    if timeout_s is not None and name == "ray":
        raise UserError("--eval-timeout is not supported with --executor ray; use --executor processes")
    if name in ("threads", "processes"):
        cores = available_cores()
        if (workers or cores) > cores:
            raise UserError(
                f"--workers {workers} exceeds the {cores} cores of this machine (use --executor ray for more)"
            )
    if name == "ray":
        from lapt.tools.executors.ray_cluster import INSTALL_HINT, ray_installed

        if not ray_installed():
            raise UserError(INSTALL_HINT)


def make_executor(name: str = "local", workers: int | None = None, ray_address: str | None = None,
                  cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                  timeout_s: float | None = None) -> Executor:
    """The executor called ``name``; UserError for a bad combination (see :func:`check_executor`).

    ``threads`` and ``processes`` default to one worker per core; ``timeout_s`` is the time limit of one
    evaluation (``--eval-timeout``).
    """
    check_executor(name, workers, timeout_s)
    if name == "local":
        return LocalExecutor(timeout_s)
    if name in ("threads", "processes"):
        n = workers or available_cores()
        return ThreadExecutor(n, timeout_s) if name == "threads" else ProcessExecutor(n, timeout_s)
    if name == "ray":
        from lapt.tools.executors.ray_cluster import RayExecutor

        return RayExecutor(workers, ray_address, cpus_per_trial, gpus_per_trial)
    raise UserError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")


def function_spec(evaluator: str, path: str | None) -> EvaluatorSpec:
    """The spec of a ``python:MODULE:FUNCTION`` evaluator: workers import the module by name from ``path``."""
    module, _, function = evaluator.removeprefix("python:").partition(":")
    return EvaluatorSpec(
        "lapt.tools.user_evaluator:FunctionEvaluator", {"module": module, "function": function, "path": path}
    )


def training_spec(train: TrainSettings, threads_per_trial: int, space: str | None = None) -> EvaluatorSpec:
    """The training evaluator's spec (JSON settings); its torch threads are the executor's per-trial share."""
    return EvaluatorSpec(
        "lapt.tools.train_adapter:make_training_evaluator",
        {"settings": train.model_dump(mode="json"), "space": space, "num_threads": threads_per_trial},
    )


def check_evaluation(settings: RunSettings) -> None:
    """Build the run's evaluator once here (imports a user function, tries a user network builder), so that
    bad evaluation input is refused before anything else is said; the run reuses what this built.

    Raises:
        UserError: the function cannot be imported, the builder cannot build an architecture.
    """
    if settings.evaluator and settings.evaluator.startswith("python:"):
        build_evaluator(function_spec(settings.evaluator, settings.evaluator_path))
    elif settings.evaluator == "train":
        check_trainable(settings.space)
        check_user_network(settings.space, settings.train or TrainSettings())


def make_evaluation(settings: RunSettings, evaluator: Evaluator | None = None) -> tuple[ExecutorEvaluator, Executor]:
    """The run's evaluator, running on the executor the settings name; returns (evaluator, executor).

    The evaluator is built from a spec (table, training settings, or a function named by module) that
    workers rebuild; a user network builder is tried on one architecture first. A custom
    ``evaluator`` object travels to process or Ray workers by pickling, so it must be picklable there.
    """
    executor = make_executor(settings.executor, settings.workers, settings.ray_address, settings.cpus_per_trial,
                             settings.gpus_per_trial, settings.eval_timeout)
    try:
        job_evaluator: Any
        if evaluator is not None:
            inner = job_evaluator = evaluator
            if not isinstance(executor, (LocalExecutor, ThreadExecutor)):
                try:
                    pickle.dumps(evaluator)
                except (pickle.PicklingError, TypeError, AttributeError) as exc:
                    raise UserError(f"--executor {executor.name} needs a picklable evaluator: {exc}") from exc
        else:
            if settings.evaluator == "table":
                job_evaluator = table_spec(settings.space, settings.table)
            elif settings.evaluator and settings.evaluator.startswith("python:"):
                job_evaluator = function_spec(settings.evaluator, settings.evaluator_path)
            else:
                train = settings.train or TrainSettings()
                job_evaluator = training_spec(train, executor.threads_per_trial, settings.space)
            inner = build_evaluator(job_evaluator)
    except BaseException:
        executor.close()
        raise
    return ExecutorEvaluator(inner, job_evaluator, executor, settings.space), executor
