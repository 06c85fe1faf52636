"""The spaces shipped with lapt, by the names users type."""

from __future__ import annotations

from collections.abc import Callable

from lapt.spaces.base import SearchSpace
from lapt.spaces.darts import DartsSpace
from lapt.spaces.nb201 import NB201Space
from lapt.spaces.tnb101 import TNB101MicroSpace

BUILTIN: dict[str, Callable[[], SearchSpace]] = {
    "nb201": NB201Space,
    "tnb101": TNB101MicroSpace,
    "darts": DartsSpace,
}


def builtin_space_names() -> tuple[str, ...]:
    """Names of the spaces shipped with lapt."""
    return tuple(BUILTIN)
