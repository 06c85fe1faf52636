"""Options for evaluating by real training (``--evaluator train``), checked before any work starts.

Every option defaults to "not given" here, so that two mistakes are told apart from a choice: a
training option given with the table evaluator (it would change nothing) is refused, and only the
options given are passed on (the defaults live in one place, :class:`lapt.runs.config.TrainSettings`).
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from lapt.errors import UserError
from lapt.runs.config import TrainSettings, first_error

# option -> TrainSettings field
_FIELDS = {
    "dataset": "dataset",
    "data_dir": "data_dir",
    "epochs": "epochs",
    "train_batch_size": "batch_size",
    "lr": "lr",
    "weight_decay": "weight_decay",
    "label_smoothing": "label_smoothing",
    "device": "device",
    "train_seed": "seed",
    "max_train_images": "max_train_images",
}


def add_train_options(p: argparse.ArgumentParser) -> None:
    """--dataset, --epochs and the rest of the training settings (defaults: TrainSettings)."""
    d = TrainSettings()
    g = p.add_argument_group("training (with --evaluator train)")
    g.add_argument("--dataset", help=f"mnist5k (shipped), cifar10, cifar100 or npz:PATH (default {d.dataset})")
    g.add_argument("--data-dir", help="folder of the CIFAR python batches")
    g.add_argument("--epochs", type=int, help=f"training epochs (default {d.epochs})")
    g.add_argument(
        "--train-batch-size", type=int, metavar="N", help=f"images per training step (default {d.batch_size})"
    )
    g.add_argument("--lr", type=float, help=f"peak learning rate, cosine schedule (default {d.lr})")
    g.add_argument("--weight-decay", type=float, help=f"L2 penalty (default {d.weight_decay})")
    g.add_argument("--label-smoothing", type=float, help=f"in [0, 1) (default {d.label_smoothing})")
    g.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    g.add_argument("--train-seed", type=int, help="training seed; the data split is fixed (default 0)")
    g.add_argument("--max-train-images", type=int, metavar="N", help="cap on training images (quick runs)")
    g.add_argument(
        "--net",
        action="append",
        metavar="KEY=VALUE",
        help="network size override, e.g. C=8, N=1, layers=8 (repeatable; keys depend on the space)",
    )
    g.add_argument("--subprocess", action="store_true", help="train each architecture in a worker subprocess")


def given_training_options(args: argparse.Namespace) -> list[str]:
    """The training options present on the command line, as the user typed them."""
    given = [f"--{name.replace('_', '-')}" for name in _FIELDS if getattr(args, name) is not None]
    if args.net:
        given.append("--net")
    if args.subprocess:
        given.append("--subprocess")
    return given


def _net_items(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise UserError(f"--net {item!r}: expected KEY=VALUE (e.g. C=8)")
        if key in out:
            raise UserError(f"--net {key} is given twice")
        out[key] = value.strip()
    return out


def train_settings(args: argparse.Namespace, space: Any, evaluator: str | None = None) -> TrainSettings | None:
    """TrainSettings from the options for ``space``, or None when the run's evaluator does not train.

    ``evaluator`` is the evaluator the run uses (``--evaluator`` as given, or the space's own choice).

    Refused with one line (UserError), before anything is trained: a training option without
    ``--evaluator train``, a value out of range (``--lr nan``), a ``--net`` key the space's network
    does not take or a value of the wrong type (``--net C=abc``), a space lapt cannot build a network
    for, an unreadable dataset, a device this machine lacks.
    """
    given = given_training_options(args)
    evaluator = args.evaluator if evaluator is None else evaluator
    if evaluator != "train":
        if given:
            raise UserError(
                f"{', '.join(given)}: training option{'s' if len(given) > 1 else ''} given without --evaluator "
                f"train; the {evaluator or 'table'} evaluator has no use for them"
            )
        return None
    from lapt.tools.net_params import TRAINABLE_SPACES, NetSettingError, parse_net
    from lapt.tools.train_adapter import check_trainable

    check_trainable(getattr(space, "ref", space.name))
    values: dict[str, Any] = {field: getattr(args, name) for name, field in _FIELDS.items()}
    values = {k: v for k, v in values.items() if v is not None}
    try:
        if space.name in TRAINABLE_SPACES:
            values["net"] = parse_net(space.name, _net_items(args.net or []))
        else:  # a user space's builder takes its own keyword arguments: JSON scalars, tried when it is built
            values["net"] = {key: _scalar(text) for key, text in _net_items(args.net or []).items()}
    except NetSettingError as e:
        raise UserError(f"--net {e}") from e
    values["in_process"] = not args.subprocess
    try:
        settings = TrainSettings(**values)
    except ValidationError as e:
        option = {field: f"--{name.replace('_', '-')}" for name, field in _FIELDS.items()}
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        raise UserError(f"{option.get(field, field)} {err.get('input')!r}: {first_error(e).partition(': ')[2]}") from e
    check_training_input(settings)
    return settings


def _scalar(text: str) -> Any:
    """A ``--net`` value for a user builder: a number or boolean when it reads as one, else the text."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (int, float, bool, str)) else text


def check_training_input(settings: TrainSettings) -> None:
    """Load the dataset once and resolve the device, so bad input fails now with one line."""
    from lapt.tools.train.datasets import load_dataset
    from lapt.tools.train.device import resolve_device
    from lapt.tools.train.errors import TrainingInputError

    try:
        load_dataset(settings.dataset, settings.data_dir, max_train_images=settings.max_train_images)
        resolve_device(settings.device)
    except TrainingInputError as e:
        raise UserError(str(e)) from e
