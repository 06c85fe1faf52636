"""Search-space registry: the names users type map to space objects."""

from __future__ import annotations

from pathlib import Path

from lapt.errors import UserError
from lapt.spaces.base import Genotype, LayerSpec, MaskSpec, SearchSpace
from lapt.spaces.builtin import BUILTIN as _BUILTIN
from lapt.spaces.builtin import builtin_space_names

_CACHE: dict[str, SearchSpace] = {}


def get_space(name: str) -> SearchSpace:
    """Return the space called ``name``; raises UserError listing the known names otherwise.

    Besides the built-in names, ``name`` may be a path to a ``.toml`` space file (or ``file:PATH`` for
    any file name): the file is loaded once per resolved path, so every part of a run shares one
    space object (masks and tables are cached per object).
    """
    if name in _CACHE:
        return _CACHE[name]
    if name in _BUILTIN:
        _CACHE[name] = _BUILTIN[name]()
        return _CACHE[name]
    path = _space_file(name)
    if path is None:
        raise UserError(f"unknown space {name!r} (known: {', '.join(_BUILTIN)}, or a path to a .toml space file)")
    key = f"file:{path}"
    if key not in _CACHE:
        from lapt.spaces.user import load_user_space  # late: it brings pydantic and the TOML reader

        _CACHE[key] = load_user_space(path)
    return _CACHE[key]


def _space_file(name: str) -> Path | None:
    """The resolved path ``name`` refers to, or None when it does not look like a space file."""
    if name.startswith("file:"):
        path = Path(name[len("file:") :]).expanduser()
    elif name.endswith(".toml"):
        path = Path(name).expanduser()
    else:
        return None
    if not path.exists():
        raise UserError(f"space file {str(path)!r} not found")
    return path.resolve()  # anything but a regular file is refused when it is read


__all__ = [
    "Genotype",
    "LayerSpec",
    "MaskSpec",
    "SearchSpace",
    "builtin_space_names",
    "get_space",
]
