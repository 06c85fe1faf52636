"""Exceptions of the training tool, kept free of torch so callers can catch them cheaply."""

from __future__ import annotations


class TrainingInputError(ValueError):
    """Bad input to the training tool: unknown dataset, missing files, unusable device or fields.

    The message is one line that names the problem, so callers can show it as is. Bad input is not a
    training failure: the worker reports it with status ``"invalid"``, not ``"failed"``.
    """


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite (checked once per epoch)."""
