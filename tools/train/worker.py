"""Training worker: one JSON request in, one JSON result out.

    python -m lapt.tools.train.worker < request.json > result.json

Runs on bare GPU machines, so it needs only torch, NumPy and the standard library: it imports nothing
from lapt outside ``lapt.tools.nets``, ``lapt.tools.net_params`` and ``lapt.tools.train`` (no pydantic,
no LangChain), and checks the request with plain code. The result's ``status`` is ``"ok"``, ``"failed"``
(the trial could not be trained: NaN loss, out of memory, unbuildable network) or ``"invalid"`` (the
request itself is wrong).
The process exits 0 whenever it wrote a result; a non-zero exit means the worker itself crashed.

Request fields (defaults in :data:`DEFAULTS`)::

    {"space": "nb201" | "tnb101" | "darts", "genotype": [...], "dataset": "mnist5k", "data_dir": null,
     "epochs": 1, "batch_size": 128, "lr": 0.05, "weight_decay": 5e-4, "label_smoothing": 0.0,
     "seed": 0, "device": "auto", "num_threads": null, "net": {"C": 16, "N": 5},
     "max_train_images": null, "task": null, "builder": null}

A user space's network comes from its own builder: ``"builder": {"module": ..., "function": ...,
"path": ...}`` is imported by name here, called as ``builder(genotype, num_classes=..., in_channels=...,
**net)`` with the genotype as a dict (layer name -> op name), and must return a ``torch.nn.Module``;
``space`` is then only a label and ``net`` holds the builder's own keyword arguments.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from lapt.tools.net_params import TRAINABLE_SPACES, NetSettingError, check_net
from lapt.tools.nets import SPACE_OPS, NetworkBuildError, check_darts_genotype
from lapt.tools.nets.nb201 import check_cell_genotype
from lapt.tools.train.datasets import load_dataset
from lapt.tools.train.device import resolve_device
from lapt.tools.train.errors import TrainingInputError
from lapt.tools.train.trainer import TrainConfig
from lapt.tools.train.trial import empty_result, run_trial

DEFAULTS: dict[str, Any] = {
    "dataset": "mnist5k",
    "data_dir": None,
    "epochs": 1,
    "batch_size": 128,
    "lr": 0.05,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "seed": 0,
    "device": "auto",
    "num_threads": None,
    "net": {},
    "max_train_images": None,
    "task": None,
    "builder": None,
}
REQUIRED = ("space", "genotype")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _check_net(space: str, net: Any) -> dict[str, Any]:
    """The network overrides, checked against what the space's builder declares (lapt.tools.net_params)."""
    if not isinstance(net, dict):
        raise TrainingInputError(f"net must be an object, got {type(net).__name__}")
    try:
        return check_net(space, net)
    except NetSettingError as exc:
        raise TrainingInputError(f"net: {exc}") from exc


def _check_genotype(space: str, genotype: Any) -> Any:
    try:
        if space == "darts":
            check_darts_genotype(genotype)
        else:
            check_cell_genotype(genotype, SPACE_OPS[space], space)
    except (NetworkBuildError, TypeError) as exc:
        raise TrainingInputError(f"genotype: {exc}") from exc
    return genotype


def _check_builder(req: dict[str, Any]) -> None:
    """A user network: the builder's name, a dict genotype, and JSON-scalar keyword arguments."""
    builder, genotype, net = req["builder"], req["genotype"], req["net"]
    if not isinstance(builder, dict) or set(builder) != {"module", "function", "path"}:
        raise TrainingInputError("builder must be an object with module, function and path")
    if not all(isinstance(builder[k], str) for k in ("module", "function")) or not (
        builder["path"] is None or isinstance(builder["path"], str)
    ):
        raise TrainingInputError("builder.module and builder.function must be strings, builder.path a string or null")
    if not isinstance(req["space"], str) or not req["space"]:
        raise TrainingInputError(f"space must be a name, got {req['space']!r}")
    pairs = genotype.items() if isinstance(genotype, dict) else ()
    if not isinstance(genotype, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in pairs):
        raise TrainingInputError("genotype: a user network takes an object of layer name -> op name")
    if not isinstance(net, dict) or not all(isinstance(v, str | int | float | bool) for v in net.values()):
        raise TrainingInputError("net must be an object of numbers, strings or booleans for the builder")


def validate_request(request: Any) -> dict[str, Any]:
    """Fill defaults and check every field; raise TrainingInputError naming the first bad one."""
    if not isinstance(request, dict):
        raise TrainingInputError(f"the request must be a JSON object, got {type(request).__name__}")
    unknown = sorted(set(request) - set(DEFAULTS) - set(REQUIRED))
    if unknown:
        raise TrainingInputError(f"unknown request field(s): {', '.join(unknown)}")
    missing = [key for key in REQUIRED if key not in request]
    if missing:
        raise TrainingInputError(f"missing request field(s): {', '.join(missing)}")
    req = {**DEFAULTS, **request}
    if req["builder"] is None and req["space"] not in TRAINABLE_SPACES:
        raise TrainingInputError(
            f"unknown space {req['space']!r} (known: {', '.join(TRAINABLE_SPACES)}, or a builder)"
        )
    checks: list[tuple[str, bool, str]] = [
        ("dataset", isinstance(req["dataset"], str), "a string"),
        ("data_dir", req["data_dir"] is None or isinstance(req["data_dir"], str), "null or a path"),
        ("epochs", _is_int(req["epochs"]) and req["epochs"] >= 1, "an integer >= 1"),
        ("batch_size", _is_int(req["batch_size"]) and req["batch_size"] >= 1, "an integer >= 1"),
        ("lr", _is_number(req["lr"]) and req["lr"] > 0, "a positive number"),
        ("weight_decay", _is_number(req["weight_decay"]) and req["weight_decay"] >= 0, "a number >= 0"),
        ("label_smoothing", _is_number(req["label_smoothing"]) and 0 <= req["label_smoothing"] < 1,
         "a number in [0, 1)"),
        ("seed", _is_int(req["seed"]) and 0 <= req["seed"] < 2**32, "an integer in [0, 2**32)"),  # NumPy's limit
        ("device", isinstance(req["device"], str), "auto, cpu, cuda or cuda:N"),
        ("num_threads", req["num_threads"] is None or (_is_int(req["num_threads"]) and req["num_threads"] >= 1),
         "null or an integer >= 1"),
        ("max_train_images", req["max_train_images"] is None
         or (_is_int(req["max_train_images"]) and req["max_train_images"] >= 1), "null or an integer >= 1"),
        ("task", req["task"] is None or isinstance(req["task"], str), "null or a string"),
    ]
    for field, ok, expected in checks:
        if not ok:
            raise TrainingInputError(f"{field} must be {expected}, got {req[field]!r}")
    if req["builder"] is not None:
        _check_builder(req)
        return req
    req["net"] = _check_net(req["space"], req["net"])
    req["genotype"] = _check_genotype(req["space"], req["genotype"])
    return req


def run_request(request: Any) -> dict[str, Any]:
    """Validate, load the data, train; return the result dict (never raises).

    The result holds the metrics of :func:`lapt.tools.train.trial.run_trial` plus ``request`` (the
    request with defaults filled in: the config snapshot to save with the run) and ``task``.
    """
    try:
        req = validate_request(request)
        config = TrainConfig(
            epochs=req["epochs"], batch_size=req["batch_size"], lr=float(req["lr"]),
            weight_decay=float(req["weight_decay"]), label_smoothing=float(req["label_smoothing"]),
            seed=req["seed"], device=req["device"], num_threads=req["num_threads"],
        )
        resolve_device(config.device)  # a missing GPU is reported before a slow dataset load
        data = load_dataset(req["dataset"], req["data_dir"], max_train_images=req["max_train_images"])
        result = run_trial(req["space"], req["genotype"], data, config, req["net"], req["builder"])
    except TrainingInputError as exc:
        result = empty_result("invalid", f"{type(exc).__name__}: {exc}")
        result.update(request=request if isinstance(request, dict) else None, task=None)
        return result
    except Exception as exc:  # failure-is-data boundary: e.g. an unreadable file must still yield a result
        result = empty_result("failed", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        result.update(failure="error", request=request, task=request.get("task"))
        return result
    result.update(request=req, task=req["task"])
    return result


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def main() -> int:
    """Read a request from stdin, write the result to stdout as one JSON object."""
    error: str | None = None
    try:
        request = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        request = None
        error = f"TrainingInputError: the request is not valid JSON ({exc})"
    if error is None:
        result = run_request(request)
    else:
        result = empty_result("invalid", error)
        result.update(request=None, task=None)
    json.dump(_json_safe(result), sys.stdout, allow_nan=False, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
