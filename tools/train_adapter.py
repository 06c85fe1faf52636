"""The training evaluator as an :class:`~lapt.tools.evaluation.Evaluator`: genotype in, Outcome out.

:class:`~lapt.tools.training_evaluator.TrainingEvaluator` speaks the worker's JSON (op-name lists,
result dicts); the graph speaks genotypes and Outcomes. This adapter translates between the two so
that ``--evaluator train`` plugs into the evaluation tool and every executor. A user space trains the
network its file's ``[evaluator] network`` builder returns: the worker imports the builder by name and
gets the architecture as a dict, layer name -> op name.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from lapt.code_ref import CodeRef
from lapt.errors import UserError
from lapt.schemas import Status
from lapt.spaces import Genotype, SearchSpace, get_space
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
        builder = user_network(space)
        if builder is None:
            return outcome_of(self.trainer.evaluate(space.name, genotype_json(space, genotype), task))
        arch = space.describe_genotype(genotype)
        return outcome_of(self.trainer.evaluate(space.name, arch, task, builder=builder_json(builder)))


def user_network(space: SearchSpace) -> CodeRef | None:
    """The network builder a user space's file names, or None (built-in spaces have their own networks)."""
    from lapt.spaces.user import UserSpace

    return space.network if isinstance(space, UserSpace) else None


def builder_json(ref: CodeRef) -> dict[str, Any]:
    """What a worker request carries to import a builder: module, function and folder."""
    return {"module": ref.module, "function": ref.function, "path": ref.path}


def check_user_network(space_name: str, train: dict[str, Any]) -> None:
    """Build one architecture of a user space with its builder, so that a broken builder (an import error,
    an unknown ``--net`` setting, a return value that is no module) stops the run before it starts
    instead of failing every trial. Nothing to do for built-in spaces.

    Raises:
        UserError: the builder cannot be imported or cannot build the space's first architecture.
    """
    space = get_space(space_name)
    ref = user_network(space)
    key = json.dumps([space_name, ref.identity() if ref else None, train], sort_keys=True, default=str)
    if ref is None or key in _CHECKED:
        return
    from torch import nn

    from lapt.tools.train.datasets import load_dataset
    from lapt.tools.train.errors import TrainingInputError
    from lapt.tools.train.user_code import import_callable

    first = next(iter(space.enumerate(limit=space.size())))
    try:
        data = load_dataset(train.get("dataset", "mnist5k"), train.get("data_dir"), max_train_images=1)
    except TrainingInputError as e:
        raise UserError(str(e)) from e
    arch = space.describe_genotype(first)
    try:
        model = import_callable(ref.module, ref.function, ref.path)(
            arch, num_classes=data.num_classes, in_channels=data.in_channels, **(train.get("net") or {})
        )
    except Exception as exc:  # user code: anything it raises means the builder cannot be used
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise UserError(f"network builder {ref.spec} cannot build {space.to_str(first)}: {text}") from exc
    if not isinstance(model, nn.Module):
        raise UserError(f"network builder {ref.spec} returned a {type(model).__name__}, not a torch.nn.Module")
    _CHECKED.add(key)  # the CLI checks before it prints anything, the run's evaluation setup again: once is enough


_CHECKED: set[str] = set()


def make_training_evaluator(settings: dict[str, Any]) -> TrainingAdapter:
    """Build from the run's ``train`` settings (TrainingEvaluator keyword arguments); UserError on an unknown one."""
    known = set(inspect.signature(TrainingEvaluator).parameters)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UserError(f"unknown training setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return TrainingAdapter(TrainingEvaluator(**settings))
