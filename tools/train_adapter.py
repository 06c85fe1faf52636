"""The training evaluator as an :class:`~lapt.tools.evaluation.Evaluator`: genotype in, Outcome out.

:class:`~lapt.tools.training_evaluator.TrainingEvaluator` speaks the worker's JSON (op-name lists,
result dicts); the graph speaks genotypes and Outcomes. This adapter translates between the two so
that ``--evaluator train`` plugs into the evaluation tool and every executor.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lapt.config import TrainSettings, first_error
from lapt.errors import UserError
from lapt.schemas import Status
from lapt.spaces import Genotype, SearchSpace
from lapt.tools.evaluation import Outcome
from lapt.tools.net_params import TRAINABLE_SPACES, NetSettingError, check_net
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


def check_trainable(space_name: str) -> None:
    """Refuse (UserError) a space lapt has no network builder for: every trial of it would fail."""
    if space_name not in TRAINABLE_SPACES:
        raise UserError(
            f"space {space_name!r} cannot be evaluated by training: lapt builds networks for "
            f"{', '.join(TRAINABLE_SPACES)} only (a user space is evaluated by its [table])"
        )


def make_training_evaluator(
    settings: TrainSettings | dict[str, Any], space: str | None = None, num_threads: int | None = None
) -> TrainingAdapter:
    """The training evaluator of a run's :class:`~lapt.config.TrainSettings` (or their JSON form).

    Args:
        settings: the run's training settings.
        space: the name of the space it will train; its network overrides are checked against what
            that space's builder declares (:mod:`lapt.tools.net_params`).
        num_threads: torch CPU threads per trial (the executor's share; None: all cores).

    Raises:
        UserError: a setting out of range, a space without a network builder, or a ``net`` key or
            value its builder does not take; before anything is trained.
    """
    try:
        train = settings if isinstance(settings, TrainSettings) else TrainSettings.model_validate(settings)
    except ValidationError as e:
        raise UserError(first_error(e, prefix="train")) from e
    if space is not None:
        check_trainable(space)
        try:
            check_net(space, train.net)
        except NetSettingError as e:
            raise UserError(f"train.net: {e}") from e
    fields = train.model_dump(exclude={"net", "in_process"})
    return TrainingAdapter(
        TrainingEvaluator(**fields, net=dict(train.net), num_threads=num_threads, in_process=train.in_process)
    )
