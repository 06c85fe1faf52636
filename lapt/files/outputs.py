"""Folders a command will write to, checked before it does any work.

A command that learns for minutes and then cannot write its result has wasted those minutes, so
``--out`` folders are checked first: refused in one line when the path is a file (bad input, exit 2),
or when this user may not create or write it (the environment, exit 1).
"""

from __future__ import annotations

import os
from pathlib import Path

from lapt.errors import EnvironmentFailure, UserError


def check_writable_dir(path: Path, what: str) -> None:
    """Refuse a folder that cannot be created or written, before anything is written to it.

    Args:
        path: the folder (it may not exist yet: then its nearest existing ancestor must be writable).
        what: how the user named it, e.g. ``--out``.

    Raises:
        UserError: the path, or an ancestor, is an existing file.
        EnvironmentFailure: this process may not create or write the folder.
    """
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise UserError(f"{what} {path}: {probe} is a symbolic link to nothing")
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{what} {path}: {probe} exists and is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        verb = "write to" if probe == path else "create"
        raise EnvironmentFailure(f"{what} {path}: cannot {verb} it (permission denied on {probe})")
