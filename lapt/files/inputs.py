"""Reading files a user names: regular files only, and never more than a stated size.

A path given on the command line or in a space file can be anything: ``/dev/zero`` (a table read from
it filled the memory), a FIFO (reading it waited forever for a writer), a directory, a file of
gigabytes. Every such file is read through :func:`read_input`, which refuses all of these with one
line before reading a byte, and reads at most ``max_bytes`` (each caller argues its cap).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lapt.errors import UserError, environment_failure

MB = 1 << 20


def kind_of(mode: int) -> str:
    """What a file of mode ``mode`` is, in words, for a refusal ("is a FIFO (named pipe)")."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_input(path: Path, what: str, max_bytes: int) -> int:
    """The size of ``path`` if it is a regular file of at most ``max_bytes``; UserError otherwise.

    Args:
        path: the file.
        what: how the user named it, for the message ("table", "--principles", "prompt").
        max_bytes: the largest size accepted.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{what} {path}: no such file") from None
    except OSError as e:
        raise UserError(f"{what} {path}: cannot read it ({e.strerror or e})") from e
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {path}: is {kind_of(st.st_mode)}, not a file")
    if st.st_size > max_bytes:
        raise UserError(f"{what} {path}: {st.st_size / MB:,.1f} MB is more than the {max_bytes / MB:,.0f} MB accepted")
    return st.st_size


def read_input(path: Path, what: str, max_bytes: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes`` (UserError otherwise, in one line).

    Raises:
        UserError: missing, not a regular file, too large, or unreadable for lack of permission.
        EnvironmentFailure: an input/output error of the machine while reading.
    """
    check_input(path, what, max_bytes)
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError as e:
        raise UserError(f"{what} {path}: cannot read it ({e.strerror})") from e
    except OSError as e:
        failure = environment_failure(e, f"cannot read {what} {path}")
        if failure is not None:
            raise failure from e
        raise UserError(f"{what} {path}: cannot read it ({e.strerror or e})") from e
    if len(data) > max_bytes:  # it grew after the size check
        raise UserError(f"{what} {path}: more than the {max_bytes / MB:,.0f} MB accepted")
    return data


def read_input_text(path: Path, what: str, max_bytes: int) -> str:
    """:func:`read_input` decoded as UTF-8 (a byte-order mark is dropped); UserError for binary data."""
    data = read_input(path, what, max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
