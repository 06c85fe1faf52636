"""The training evaluator as an :class:`~lapt.tools.evaluation.Evaluator`: genotype in, Outcome out.

:class:`~lapt.tools.training_evaluator.TrainingEvaluator` speaks the worker's JSON (op-name lists,
result dicts); the graph speaks genotypes and Outcomes. This adapter translates between the two so
that ``--evaluator train`` plugs into the evaluation tool and every executor. A user space trains the
network its file's ``[evaluator] network`` builder returns: the worker imports the builder by name and
gets the architecture as a dict, layer name -> op name.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from lapt.errors import UserError
from lapt.files.code_ref import CodeRef
from lapt.runs.config import TrainSettings, first_error
from lapt.schemas import Status
from lapt.spaces import Genotype, SearchSpace, get_space
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


def check_user_network(space_name: str, train: TrainSettings) -> None:
    """Build one architecture of a user space with its builder, so that a broken builder (an import error,
    an unknown ``--net`` setting, a return value that is no module) stops the run before it starts
    instead of failing every trial. Nothing to do for built-in spaces.

    Raises:
        UserError: the builder cannot be imported or cannot build the space's first architecture.
    """
    space = get_space(space_name)
    ref = user_network(space)
    key = json.dumps([space_name, ref.identity() if ref else None, train.model_dump(mode="json")], sort_keys=True)
    if ref is None or key in _CHECKED:
        return
    from torch import nn

    from lapt.tools.train.datasets import load_dataset
    from lapt.tools.train.errors import TrainingInputError
    from lapt.tools.train.user_code import import_callable, user_output_to_stderr

    first = next(iter(space.enumerate(limit=space.size())))
    try:
        data = load_dataset(train.dataset, train.data_dir, max_train_images=1)
    except TrainingInputError as e:
        raise UserError(str(e)) from e
    arch = space.describe_genotype(first)
    try:
        build = import_callable(ref.module, ref.function, ref.path)
        with user_output_to_stderr():
            model = build(arch, num_classes=data.num_classes, in_channels=data.in_channels, **train.net)
    except (Exception, SystemExit) as exc:  # user code: anything it raises means the builder cannot be used
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise UserError(f"network builder {ref.spec} cannot build {space.to_str(first)}: {text}") from exc
    if not isinstance(model, nn.Module):
        raise UserError(f"network builder {ref.spec} returned a {type(model).__name__}, not a torch.nn.Module")
    _CHECKED.add(key)  # the CLI checks before it prints anything, the run's evaluation setup again: once is enough


_CHECKED: set[str] = set()


def check_trainable(space_name: str) -> None:
    """Refuse (UserError) a space lapt has no network for: every trial of it would fail.

    Built-in spaces have their networks; a user space needs a builder in its file (``[evaluator] network``).
    """
    if space_name in TRAINABLE_SPACES:
        return
    if user_network(get_space(space_name)) is None:
        raise UserError(
            f"space {space_name!r} cannot be evaluated by training: lapt builds networks for "
            f"{', '.join(TRAINABLE_SPACES)}, and its file names no network builder ([evaluator] network)"
        )


def make_training_evaluator(
    settings: TrainSettings | dict[str, Any], space: str | None = None, num_threads: int | None = None
) -> TrainingAdapter:
    """The training evaluator of a run's :class:`~lapt.runs.config.TrainSettings` (or their JSON form).

    Args:
        settings: the run's training settings.
        space: the name (or space-file reference) of the space it will train; a built-in space's network
            overrides are checked against what its builder declares (:mod:`lapt.tools.net_params`), a user
            space's builder is test-built once (:func:`check_user_network`).
        num_threads: torch CPU threads per trial (the executor's share; None: all cores).

    Raises:
        UserError: a setting out of range, a space without a network, or a ``net`` key or value its
            builder does not take; before anything is trained.
    """
    try:
        train = settings if isinstance(settings, TrainSettings) else TrainSettings.model_validate(settings)
    except ValidationError as e:
        raise UserError(first_error(e, prefix="train")) from e
    if space is not None:
        check_trainable(space)
        if space in TRAINABLE_SPACES:
            try:
                check_net(space, train.net)
            except NetSettingError as e:
                raise UserError(f"train.net: {e}") from e
        else:
            check_user_network(space, train)
    fields = train.model_dump(exclude={"net", "in_process"})
    return TrainingAdapter(
        TrainingEvaluator(**fields, net=dict(train.net), num_threads=num_threads, in_process=train.in_process)
    )
