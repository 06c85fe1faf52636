"""Evaluate with your own code: a Python function that takes an architecture and returns its metrics.

The function is named ``MODULE:FUNCTION`` (``--evaluator python:MODULE:FUNCTION``, or ``[evaluator]
function`` in a space file) and called as ``function(arch, task)``:

* ``arch``: the architecture as a dict, layer name -> op name, in layer order (an absent optional layer
  holds its absent op; DARTS layers hold ``[[op, input], [op, input]]``);
* ``task``: the run's target task;
* returns the validation metric as a number, or a mapping with ``"val"`` (required), ``"test"``
  (optional) and any other numbers or short strings, which are kept with the trial as extras (at most
  :data:`MAX_EXTRAS` of them, strings cut to :data:`MAX_EXTRA_CHARS` characters; ``extras_cut`` says
  what was cut).

An exception (``SystemExit`` included: ``sys.exit()`` ends the trial, not the run), a non-finite metric
(an int too large for a float included) or a result of the wrong shape fails the trial (with the
reason) and the search goes on. What the function prints goes to stderr, never among lapt's result
lines on stdout. The evaluator is rebuilt from its :class:`~lapt.tools.executors.jobs.EvaluatorSpec`
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
from lapt.tools.train.user_code import import_callable, user_output_to_stderr

MAX_EXTRAS = 32
"""Extras kept per trial: each is stored in the checkpoint, the cache, the trace and ``trials.jsonl``."""
MAX_EXTRA_CHARS = 200
"""Characters kept of an extra's string value (and of its name): a label, not a log."""
CUT_KEY = "extras_cut"
"""The extra that says what was cut from the others, when anything was."""


def _as_float(value: Any) -> float | None:
    """``float(value)``, or None when it does not fit in one (an int such as ``10**400``)."""
    try:
        return float(value)
    except (OverflowError, ValueError):
        return None


def _cap_extras(result: Mapping[Any, Any]) -> tuple[dict[str, Any], str | None]:
    """The extras of ``result`` (every key but val and test) within the caps, or the reason they fail the trial.

    Numbers become floats, strings longer than :data:`MAX_EXTRA_CHARS` are cut, and extras beyond
    :data:`MAX_EXTRAS` are dropped; what was cut is said under :data:`CUT_KEY`.
    """
    extras: dict[str, Any] = {}
    cut: list[str] = []
    dropped: list[str] = []
    for raw_key, value in result.items():
        key = str(raw_key)
        if key in ("val", "test"):
            continue
        if len(key) > MAX_EXTRA_CHARS:
            cut.append(f"a name cut from {len(key)} characters")
            key = key[:MAX_EXTRA_CHARS]
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            number = _as_float(value)
            if number is None:
                return {}, f"the evaluator's {key[:60]!r} is not a finite number (too large for a float)"
            kept: Any = number
        elif isinstance(value, str):
            kept = value
            if len(value) > MAX_EXTRA_CHARS:
                cut.append(f"{key[:60]!r} cut from {len(value)} to {MAX_EXTRA_CHARS} characters")
                kept = value[:MAX_EXTRA_CHARS]
        elif isinstance(value, bool) or value is None:
            kept = value
        else:
            return {}, f"the evaluator's {key[:60]!r} is a {type(value).__name__}; extras must be numbers or strings"
        if len(extras) >= MAX_EXTRAS or key == CUT_KEY:
            dropped.append(key[:60])
            continue
        extras[key] = kept
    if dropped:
        names = ", ".join(dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        cut.append(f"{len(dropped)} extra(s) dropped beyond {MAX_EXTRAS} ({names})")
    if cut:
        extras[CUT_KEY] = "; ".join(cut)[: 2 * MAX_EXTRA_CHARS]
    return extras, None


def outcome_of_result(result: Any, cost_s: float) -> Outcome:
    """A function's return value as an Outcome; a value of the wrong shape is a failed outcome saying why.

    Extras are capped (:data:`MAX_EXTRAS` of them, strings of :data:`MAX_EXTRA_CHARS` characters): one
    10 MB string per trial would otherwise be stored four times over for every evaluation.
    """

    def failed(why: str) -> Outcome:
        return Outcome(status=Status.FAILED, error=why, cost_s=cost_s)

    def number(value: Any) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)

    if number(result):
        result = {"val": result}
    if not isinstance(result, Mapping):
        return failed(f"the evaluator returned {type(result).__name__}; expected a number or a mapping with 'val'")
    metrics: dict[str, float | None] = {}
    for key in ("val", "test"):
        value = result.get(key)
        if value is None and key == "test":
            metrics[key] = None
            continue
        if not number(value):
            expected = "a number" if key == "val" else "a number or None"
            return failed(f"the evaluator's {key!r} is {_short_repr(value)}; expected {expected}")
        converted = _as_float(value)
        if converted is None:
            return failed(f"the evaluator's {key!r} is not a finite number (too large for a float)")
        if not math.isfinite(converted):
            return failed(f"the evaluator's {key!r} is {converted} (not a finite number)")
        metrics[key] = converted
    extras, why = _cap_extras(result)
    if why is not None:
        return failed(why)
    return Outcome(status=Status.OK, val=metrics["val"], test=metrics["test"], cost_s=cost_s, extras=extras)


def _short_repr(value: Any) -> str:
    """``repr(value)`` cut to a length that fits a trial record."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
        except (Exception, SystemExit) as exc:  # user code runs at import: anything it raises means "cannot use it"
            raise UserError(
                f"--evaluator python:{self.ref.spec}: cannot import it ({type(exc).__name__}: {exc})".splitlines()[0]
            ) from exc

    def settings(self) -> dict[str, Any]:
        return {"evaluator": f"python:{self.ref.spec}", "sha256": self.sha256}

    def evaluate(self, space: SearchSpace, genotype: Genotype, task: str) -> Outcome:
        arch = space.describe_genotype(genotype)
        start = time.perf_counter()
        try:
            with user_output_to_stderr():
                result = self.function(arch, task)
        except SystemExit as exc:  # sys.exit() in user code ends that trial, not the run (nor a worker)
            text = f"SystemExit: the evaluator called sys.exit({exc.code!r})"[:500]
            return Outcome(status=Status.FAILED, error=text, cost_s=time.perf_counter() - start)
        except Exception as exc:  # failure-is-data boundary: the user's code failing on one architecture
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            return Outcome(status=Status.FAILED, error=text, cost_s=time.perf_counter() - start)
        cost_s = time.perf_counter() - start
        try:
            return outcome_of_result(result, cost_s)
        except Exception as exc:  # failure-is-data boundary: a returned object that breaks when read
            text = f"the evaluator's result cannot be read ({type(exc).__name__}: {exc})".splitlines()[0][:500]
            return Outcome(status=Status.FAILED, error=text, cost_s=cost_s)
