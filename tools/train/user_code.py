"""Import user code (an evaluator function, a network builder) by name, in whatever process runs it.

The code is named by module and attribute, never shipped: every process (this one, a worker process, a
Ray worker) imports it itself, with the folder it lives in put first on ``sys.path`` so that it can
import its sibling modules. Only the standard library is used here, so the training worker stays light.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def import_callable(module: str, function: str, path: str | None = None) -> Callable[..., Any]:
    """``module.function`` (``function`` may be dotted), imported with ``path`` first on ``sys.path``.

    Raises:
        ImportError, AttributeError: the module or the attribute does not exist (or the module's own
            import failed: whatever it raised propagates).
        TypeError: the attribute is not callable.
    """
    if path is not None and path not in sys.path:
        sys.path.insert(0, path)
    obj: Any = importlib.import_module(module)
    for part in function.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{module}:{function} is a {type(obj).__name__}, not a function")
    return obj
