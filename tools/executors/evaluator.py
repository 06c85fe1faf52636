"""The bridge from the evaluation tool to an executor: an Evaluator that submits each call as a job.

The ``evaluate_architecture`` tool keeps calling ``ctx.evaluator.evaluate(...)`` (so every evaluation
stays one tool run in traces, and an evaluation cache in front of it keeps working); this evaluator
turns the call into a :class:`~lapt.tools.executors.jobs.Job`. The ToolNode runs the tool calls of a
batch in threads, so the jobs of a batch are in flight together and the executor runs them in parallel.
"""

from __future__ import annotations

from typing import Any

from lapt.spaces import Genotype, SearchSpace
from lapt.tools.evaluation import Evaluator, Outcome
from lapt.tools.executors.base import Executor
from lapt.tools.executors.jobs import Job


class ExecutorEvaluator:
    """Evaluates through ``executor``; ``name`` and ``settings`` are those of the evaluator it stands for.

    Args:
        inner: the evaluator itself (built in this process; used for its name and settings).
        job_evaluator: what jobs carry: an EvaluatorSpec, or ``inner`` when it has no spec.
        executor: where jobs run.
        space_ref: the name or file path that rebuilds the run's space in a worker.
    """

    def __init__(self, inner: Evaluator, job_evaluator: Any, executor: Executor, space_ref: str) -> None:
        self.inner = inner
        self.job_evaluator = job_evaluator
        self.executor = executor
        self.space_ref = space_ref
        self.name = inner.name

    def settings(self) -> dict[str, Any]:
        """The wrapped evaluator's settings: where it runs does not change a result."""
        return self.inner.settings()

    def evaluate(self, space: SearchSpace, genotype: Genotype, task: str) -> Outcome:
        """Run one evaluation as a job and wait for it (lost jobs come back as failed outcomes)."""
        return self.executor.run(Job(self.space_ref, space.to_str(genotype), task, self.job_evaluator))
