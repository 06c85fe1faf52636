"""The training evaluator as an :class:`~lapt.tools.evaluation.Evaluator`: genotype in, Outcome out.

:class:`~lapt.tools.training_evaluator.TrainingEvaluator` speaks the worker's JSON (op-name lists,
result dicts); the graph speaks genotypes and Outcomes. This adapter translates between the two so
that ``--evaluator train`` plugs into the evaluation tool and every executor.
"""

from __future__ import annotations

import inspect
from typing import Any

from lapt.errors import UserError
from lapt.schemas import Status
from lapt.spaces import Genotype, SearchSpace
from lapt.tools.evaluation import Outcome
from lapt.tools.training_evaluator import TrainingEvaluator

_EXTRA_KEYS = ("params", "flops", "peak_memory_mb", "device", "train_acc", "train_loss", "failure")


def genotype_json(space: SearchSpace, genotype: Genotype) -> list[Any]:
    """The worker's form: op names per edge (NB201, TNB101), ``[[op, input], [op, input]]`` per DARTS layer."""
    return list(space.describe_genotype(genotype).values())


def outcome_of(result: dict[str, Any]) -> Outcome:
    """A worker result dict as an Outcome (``invalid`` and ``failed`` both fail the trial)."""
    ok = result.get("status") == "ok"
    return Outcome(
        status=Status.OK if ok else Status.FAILED,
        val=result.get("val_acc") if ok else None,
        test=result.get("test_acc") if ok else None,
        cost_s=float(result.get("train_seconds") or 0.0),
        error=None if ok else str(result.get("error") or f"training {result.get('status')}"),
        extras={k: result.get(k) for k in _EXTRA_KEYS if result.get(k) is not None},
    )


class TrainingAdapter:
    """Trains each architecture with fixed settings (see TrainingEvaluator for the settings)."""

    name = "train"

    def __init__(self, trainer: TrainingEvaluator) -> None:
        self.trainer = trainer

    def settings(self) -> dict[str, Any]:
        return self.trainer.settings()

    def evaluate(self, space: SearchSpace, genotype: Genotype, task: str) -> Outcome:
        return outcome_of(self.trainer.evaluate(space.name, genotype_json(space, genotype), task))


def make_training_evaluator(settings: dict[str, Any]) -> TrainingAdapter:
    """Build from the run's ``train`` settings (TrainingEvaluator keyword arguments); UserError on an unknown one."""
    known = set(inspect.signature(TrainingEvaluator).parameters)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UserError(f"unknown training setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return TrainingAdapter(TrainingEvaluator(**settings))
