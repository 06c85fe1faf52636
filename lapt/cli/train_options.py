"""Options for evaluating by real training (``--evaluator train``), checked before any work starts."""

from __future__ import annotations

import argparse
from typing import Any

from lapt.errors import UserError


def add_train_options(p: argparse.ArgumentParser) -> None:
    """--dataset, --epochs and the rest of the training settings."""
    g = p.add_argument_group("training (with --evaluator train)")
    g.add_argument("--dataset", default="mnist5k", help="mnist5k (shipped), cifar10, cifar100 or npz:PATH")
    g.add_argument("--data-dir", help="folder of the CIFAR python batches")
    g.add_argument("--epochs", type=int, default=1)
    g.add_argument("--train-batch-size", type=int, default=64, metavar="N", help="images per training step")
    g.add_argument("--lr", type=float, default=0.1, help="peak learning rate (cosine schedule)")
    g.add_argument("--weight-decay", type=float, default=5e-4)
    g.add_argument("--label-smoothing", type=float, default=0.0)
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--train-seed", type=int, default=0, help="training seed (the data split is fixed)")
    g.add_argument("--max-train-images", type=int, metavar="N", help="cap on training images (quick runs)")
    g.add_argument(
        "--net",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="network size override, e.g. C=8, N=1, layers=8 (repeatable)",
    )
    g.add_argument("--subprocess", action="store_true", help="train each architecture in a worker subprocess")


def _net(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--net {item!r}: expected KEY=VALUE (e.g. C=8)")
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """TrainingEvaluator keyword arguments from the options, validated (dataset readable, device present)."""
    if args.epochs < 1 or args.train_batch_size < 1 or args.lr <= 0:
        raise UserError("--epochs and --train-batch-size must be >= 1 and --lr > 0")
    settings: dict[str, Any] = {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "epochs": args.epochs,
        "batch_size": args.train_batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "label_smoothing": args.label_smoothing,
        "seed": args.train_seed,
        "device": args.device,
        "net": _net(args.net) or None,
        "max_train_images": args.max_train_images,
        "in_process": not args.subprocess,
    }
    check_training_input(settings)
    return settings


def check_training_input(settings: dict[str, Any]) -> None:
    """Load the dataset once and resolve the device, so bad input fails now with one line."""
    from lapt.tools.train.datasets import load_dataset
    from lapt.tools.train.device import resolve_device
    from lapt.tools.train.errors import TrainingInputError

    try:
        load_dataset(settings["dataset"], settings.get("data_dir"), max_train_images=settings.get("max_train_images"))
        resolve_device(settings.get("device") or "auto")
    except TrainingInputError as e:
        raise UserError(str(e)) from e
