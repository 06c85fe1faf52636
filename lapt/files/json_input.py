"""JSON a user hands in, parsed with a bound on how deeply it nests.

Python's JSON parser recurses once per bracket: 200 KB of ``[`` raise ``RecursionError`` (a traceback,
not a message), and a document just under the interpreter's limit parses but breaks whatever walks it
next (validation, ``json.dumps(indent=...)``, the trace viewer). No file lapt writes nests more than a
dozen levels, so :func:`load_json` refuses anything beyond :data:`MAX_JSON_DEPTH` as one error that
callers turn into their own one-line message.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 100
"""Levels of arrays and objects accepted: several times what any lapt file (a trace run, a principle
export, curves.json) holds."""


class JSONTooDeep(ValueError):
    """The document nests arrays and objects more deeply than allowed."""


def load_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(text)``, refusing documents nested more than ``max_depth`` levels.

    Raises:
        json.JSONDecodeError: not JSON (a ValueError, as is JSONTooDeep).
        UnicodeDecodeError: bytes that are not UTF-8.
        JSONTooDeep: nested too deeply.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeep(f"nested more than {max_depth} levels deep") from None
    if _opening_brackets(text) > max_depth and _depth_exceeds(value, max_depth):  # few brackets: shallow
        raise JSONTooDeep(f"nested more than {max_depth} levels deep")
    return value


def _opening_brackets(text: str | bytes) -> int:
    """Opening brackets in ``text`` (inside strings too): a bound on the depth, and cheap to count."""
    if isinstance(text, bytes):
        return text.count(b"[") + text.count(b"{")
    return text.count("[") + text.count("{")


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """True when ``value`` has arrays or objects nested more than ``max_depth`` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
