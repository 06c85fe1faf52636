"""Evaluate with your own code: a Python function that takes an architecture and returns its metrics.

The function is named ``MODULE:FUNCTION`` (``--evaluator python:MODULE:FUNCTION``, or ``[evaluator]
function`` in a space file) and called as ``function(arch, task)``:

* ``arch``: the architecture as a dict, layer name -> op name, in layer order (an absent optional layer
  holds its absent op; DARTS layers hold ``[[op, input], [op, input]]``);
* ``task``: the run's target task;
* returns the validation metric as a number, or a mapping with ``"val"`` (required), ``"test"``
  (optional) and any other numbers or strings, which are kept with the trial as extras.

An exception, a non-finite metric or a result of the wrong shape fails the trial (with the reason) and
the search goes on. The evaluator is rebuilt from its :class:`~lapt.tools.executors.jobs.EvaluatorSpec`
in every worker process and Ray worker, which import the module by name; the sha256 of its source is
part of its settings (the evaluation cache key) and of the run identity.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Mapping
from typing import Any

from lapt.errors import UserError
from lapt.files.code_ref import CodeRef
from lapt.schemas import Status
from lapt.spaces import Genotype, SearchSpace
from lapt.tools.evaluation import Outcome
from lapt.tools.train.user_code import import_callable


def outcome_of_result(result: Any, cost_s: float) -> Outcome:
    """A function's return value as an Outcome; a value of the wrong shape is a failed outcome saying why."""

    def failed(why: str) -> Outcome:
        return Outcome(status=Status.FAILED, error=why, cost_s=cost_s)

    def number(value: Any) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)

    if number(result):
        result = {"val": result}
    if not isinstance(result, Mapping):
        return failed(f"the evaluator returned {type(result).__name__}; expected a number or a mapping with 'val'")
    if not number(result.get("val")):
        return failed(f"the evaluator's 'val' is {result.get('val')!r}; expected a number")
    val = float(result["val"])
    test = result.get("test")
    if test is not None and not number(test):
        return failed(f"the evaluator's 'test' is {test!r}; expected a number or None")
    test = None if test is None else float(test)
    for key, value in (("val", val), ("test", test)):
        if value is not None and not math.isfinite(value):
            return failed(f"the evaluator's {key!r} is {value} (not a finite number)")
    extras: dict[str, Any] = {}
    for key, value in result.items():
        if key in ("val", "test"):
            continue
        if number(value):
            extras[str(key)] = float(value)
        elif isinstance(value, str | bool) or value is None:
            extras[str(key)] = value
        else:
            return failed(f"the evaluator's {key!r} is a {type(value).__name__}; extras must be numbers or strings")
    return Outcome(status=Status.OK, val=val, test=test, cost_s=cost_s, extras=extras)


class FunctionEvaluator:
    """Calls ``module.function(arch, task)`` for each architecture.

    Args:
        module: the module's dotted name.
        function: the function's name in it.
        path: folder imported from (put on ``sys.path`` after the standard library), or None for ``sys.path``
            as it is.

    Raises:
        UserError: the module cannot be found or imported, or the name is not a function.
    """

    name = "python"

    def __init__(self, module: str, function: str, path: str | None = None) -> None:
        self.ref = CodeRef(module, function, path)
        self.sha256 = self.ref.sha256()
        try:
            self.function = import_callable(module, function, path)
        except Exception as exc:  # user code runs at import: anything it raises means "cannot use it"
            raise UserError(
                f"--evaluator python:{self.ref.spec}: cannot import it ({type(exc).__name__}: {exc})".splitlines()[0]
            ) from exc

    def settings(self) -> dict[str, Any]:
        return {"evaluator": f"python:{self.ref.spec}", "sha256": self.sha256}

    def evaluate(self, space: SearchSpace, genotype: Genotype, task: str) -> Outcome:
        arch = space.describe_genotype(genotype)
        start = time.perf_counter()
        try:
            result = self.function(arch, task)
        except Exception as exc:  # failure-is-data boundary: the user's code failing on one architecture
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            return Outcome(status=Status.FAILED, error=text, cost_s=time.perf_counter() - start)
        return outcome_of_result(result, time.perf_counter() - start)
