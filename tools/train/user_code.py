"""Import user code (an evaluator function, a network builder) by name, in whatever process runs it.

The code is named by module and attribute, never shipped: every process (this one, a worker process, a
Ray worker) imports it itself, with the folder it lives in on ``sys.path`` so that it can import its
sibling modules. Only the standard library is used here, so the training worker stays light.

The folder goes *after* the standard library on ``sys.path``, never first. A spawned worker process
starts with its parent's ``sys.path`` and then imports much of the standard library (``types``,
``logging``, ``uuid``...) while it sets itself up; with the folder first, a user file called
``logging.py`` next to the space file would replace the standard module there and kill every worker,
while this process, which imported those modules long before, would not notice. After the standard
library, a file named like a standard module is never imported in place of it, on any executor.

Whatever user code prints goes to stderr (:func:`user_output_to_stderr`): stdout carries lapt's own
result lines (``lapt run``, ``lapt eval --json``) and the training worker's JSON result, which a
``print()`` in an evaluator or a network builder would otherwise corrupt.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

_GUARD_LOCK = threading.Lock()
_guard_depth = 0
_saved_stdout: TextIO | None = None


@contextlib.contextmanager
def user_output_to_stderr() -> Iterator[None]:
    """While user code runs, ``sys.stdout`` is ``sys.stderr``.

    Counted rather than nested like :func:`contextlib.redirect_stdout`: evaluations overlap in the
    threads of one process, and a plain nested swap restored by the first thread to finish would
    leave stdout pointing at stderr for good. lapt itself prints nothing to stdout while evaluations
    run (its result lines come after the search).
    """
    global _guard_depth, _saved_stdout
    with _GUARD_LOCK:
        if _guard_depth == 0:
            _saved_stdout = sys.stdout
            sys.stdout = sys.stderr
        _guard_depth += 1
    try:
        yield
    finally:
        with _GUARD_LOCK:
            _guard_depth -= 1
            if _guard_depth == 0 and _saved_stdout is not None:
                sys.stdout = _saved_stdout
                _saved_stdout = None


def _stdlib_entries() -> set[str]:
    """The ``sys.path`` entries that hold the standard library (its folder, lib-dynload, the zip)."""
    lib = Path(os.__file__).resolve().parent
    names = {str(lib), str(lib / "lib-dynload")}
    return names | {str(lib.parent / f"python{sys.version_info[0]}{sys.version_info[1]}.zip")}


def add_code_folder(path: str) -> None:
    """Put ``path`` on ``sys.path`` right after the standard library's entries (once)."""
    if path in sys.path:
        return
    stdlib = _stdlib_entries()
    last = max((i for i, entry in enumerate(sys.path) if _resolved(entry) in stdlib), default=len(sys.path) - 1)
    sys.path.insert(last + 1, path)


def _resolved(entry: str) -> str:
    try:
        return str(Path(entry).resolve()) if entry else ""
    except OSError:
        return entry


def import_callable(module: str, function: str, path: str | None = None) -> Callable[..., Any]:
    """``module.function`` (``function`` may be dotted), imported with ``path`` on ``sys.path``.

    Raises:
        ImportError, AttributeError: the module or the attribute does not exist (or the module's own
            import failed: whatever it raised propagates); the module of that name that Python imports
            is not the one in ``path`` (a standard or already imported module of the same name).
        TypeError: the attribute is not callable.
    """
    if path is not None:
        add_code_folder(path)
    with user_output_to_stderr():  # a module may print when it is imported
        obj: Any = importlib.import_module(module)
    if path is not None:
        top = sys.modules[module.split(".")[0]]
        file: str | None = getattr(top, "__file__", None)
        origins = [file] if file else [str(p) for p in getattr(top, "__path__", [])]
        folder = Path(path).resolve()
        if not origins or not all(Path(o).resolve().is_relative_to(folder) for o in origins):
            raise ImportError(
                f"module {top.__name__!r} is imported from {origins[0] if origins else 'the interpreter'}, not from "
                f"{path} (a standard or installed module has that name: rename your file)"
            )
    for part in function.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{module}:{function} is a {type(obj).__name__}, not a function")
    return obj
