"""What each space's network builder accepts as size overrides (``--net KEY=VALUE``), declared as data.

The builders in :mod:`lapt.tools.nets` take these keyword arguments; this table is their declaration
(name, type, default, allowed range) and lives apart from them so that settings can be checked before
any work starts without importing torch. ``tests/test_nets.py`` holds each declaration equal to its
builder's signature. A space missing here has no network lapt can build: it cannot be trained.

The upper bounds keep a typo from becoming hours of out-of-memory trials: they are far above the
benchmarks' own networks (NB201 C=16 N=5, TNB101 C=64 two cells per stage, DARTS C=36 20 cells).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


class NetSettingError(ValueError):
    """A network override the space's builder does not accept (unknown key, wrong type, out of range)."""


@dataclass(frozen=True)
class NetParam:
    """One keyword argument of a network builder.

    Attributes:
        name: the keyword.
        kind: ``int``, ``float``, ``bool`` or ``str``.
        default: the builder's default.
        description: what it sizes, for help texts and errors.
        minimum, maximum: inclusive bounds of a number (``maximum_exclusive`` for a float below 1).
        even: an integer that must be even.
        pattern: a regular expression a string must match in full.
    """

    name: str
    kind: type
    default: int | float | bool | str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    maximum_exclusive: bool = False
    even: bool = False
    pattern: str | None = None

    def expected(self) -> str:
        """The accepted values in words, e.g. ``an integer in [1, 1024]``."""
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return f"a string matching {self.pattern}" if self.pattern else "a string"
        what = {int: "an even integer" if self.even else "an integer", float: "a number"}[self.kind]
        if self.minimum is not None and self.maximum is not None:
            close = ")" if self.maximum_exclusive else "]"
            return f"{what} in [{self.minimum:g}, {self.maximum:g}{close}"
        return what

    def check(self, value: Any) -> Any:
        """``value`` if it is of this parameter's type and range; NetSettingError otherwise."""
        is_int = isinstance(value, int) and not isinstance(value, bool)
        ok = {
            int: is_int,
            float: (is_int or isinstance(value, float)) and math.isfinite(value),
            bool: isinstance(value, bool),
            str: isinstance(value, str),
        }[self.kind]
        if ok and self.kind in (int, float):
            ok = (self.minimum is None or value >= self.minimum) and (
                self.maximum is None or (value < self.maximum if self.maximum_exclusive else value <= self.maximum)
            )
            ok = ok and not (self.even and value % 2)
        if ok and self.pattern is not None:
            ok = re.fullmatch(self.pattern, value) is not None
        if not ok:
            raise NetSettingError(f"{self.name} must be {self.expected()}, got {value!r}")
        return float(value) if self.kind is float else value

    def parse(self, text: str) -> Any:
        """The value a command line gave as text, converted to this parameter's type and checked."""
        value: Any = text
        try:
            if self.kind is int:
                value = int(text)
            elif self.kind is float:
                value = float(text)
        except ValueError:
            raise NetSettingError(f"{self.name} must be {self.expected()}, got {text!r}") from None
        if self.kind is bool:
            low = text.strip().lower()
            if low not in _TRUE + _FALSE:
                raise NetSettingError(f"{self.name} must be {self.expected()}, got {text!r}")
            value = low in _TRUE
        return self.check(value)


_C = "channels of the first stage"
NET_PARAMS: dict[str, tuple[NetParam, ...]] = {
    "nb201": (
        NetParam("C", int, 16, _C + " (stages use C, 2C, 4C)", minimum=1, maximum=1024),
        NetParam("N", int, 5, "cells per stage", minimum=1, maximum=64),
    ),
    "tnb101": (
        NetParam("C", int, 64, "channels after the stem", minimum=2, maximum=1024, even=True),
        NetParam("macro_code", str, "41414", "one digit 1-4 per stage", pattern=r"[1-4]{1,12}"),
        NetParam("cells_per_stage", int, 2, "cells in each stage", minimum=1, maximum=64),
    ),
    "darts": (
        NetParam("C", int, 36, "initial channels", minimum=1, maximum=1024),
        NetParam("layers", int, 20, "cells in the network", minimum=3, maximum=200),
        NetParam("auxiliary", bool, False, "add the auxiliary head"),
        NetParam("drop_path_prob", float, 0.0, "drop-path probability", minimum=0, maximum=1, maximum_exclusive=True),
    ),
}
TRAINABLE_SPACES: tuple[str, ...] = tuple(NET_PARAMS)


def _params(space: str) -> dict[str, NetParam]:
    if space not in NET_PARAMS:
        raise NetSettingError(
            f"lapt has no network to build for space {space!r} (it trains {', '.join(TRAINABLE_SPACES)})"
        )
    return {p.name: p for p in NET_PARAMS[space]}


def _key(space: str, params: Mapping[str, NetParam], key: str) -> NetParam:
    if key not in params:
        raise NetSettingError(f"{key!r} is not a setting of the {space} network (it takes {', '.join(params)})")
    return params[key]


def check_net(space: str, net: Mapping[str, Any]) -> dict[str, Any]:
    """``net`` if every key is a setting of ``space``'s network builder with a value of its type and range.

    Raises:
        NetSettingError: naming the first bad key or value (or a space lapt cannot build).
    """
    params = _params(space)
    return {key: _key(space, params, key).check(value) for key, value in net.items()}


def parse_net(space: str, items: Mapping[str, str]) -> dict[str, Any]:
    """Command-line overrides (text values) converted to their declared types and checked."""
    params = _params(space)
    return {key: _key(space, params, key).parse(text) for key, text in items.items()}
