"""Search-space registry: the names users type map to space objects."""

from __future__ import annotations

from collections.abc import Callable

from lapt.errors import UserError
from lapt.spaces.base import Genotype, LayerSpec, MaskSpec, SearchSpace
from lapt.spaces.darts import DartsSpace
from lapt.spaces.nb201 import NB201Space
from lapt.spaces.tnb101 import TNB101MicroSpace

_BUILTIN: dict[str, Callable[[], SearchSpace]] = {
    "nb201": NB201Space,
    "tnb101": TNB101MicroSpace,
    "darts": DartsSpace,
}
_CACHE: dict[str, SearchSpace] = {}


def builtin_space_names() -> tuple[str, ...]:
    """Names of the spaces shipped with lapt."""
    return tuple(_BUILTIN)


def get_space(name: str) -> SearchSpace:
    """Return the space called ``name``; raises UserError listing the known names otherwise."""
    if name not in _CACHE:
        if name not in _BUILTIN:
            raise UserError(f"unknown space {name!r} (known: {', '.join(_BUILTIN)})")
        _CACHE[name] = _BUILTIN[name]()
    return _CACHE[name]


__all__ = [
    "Genotype",
    "LayerSpec",
    "MaskSpec",
    "SearchSpace",
    "builtin_space_names",
    "get_space",
]
