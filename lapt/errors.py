"""Errors the CLI turns into one clear line: exit 2 for bad input, 1 for the environment, 3 for an agent.

Every problem caused by what the user typed or supplied (a name, a file, an option) is raised as a
:class:`UserError`; every problem of the machine the command runs on (a full disk, a folder it may not
write, a reader that closed the pipe) as an :class:`EnvironmentFailure`. The command line reports both
without a traceback; anything else is a bug.
"""

from __future__ import annotations

import errno
from typing import Any

# OS errors that say something about the machine, not about lapt: reported in one line (exit 1).
_ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,  # no space left on device
        errno.EDQUOT,  # disk quota exceeded
        errno.EFBIG,  # file too large (for the file system, or the process's file size limit)
        errno.EROFS,  # read-only file system
        errno.EACCES,  # permission denied
        errno.EPERM,  # operation not permitted
        errno.EIO,  # input/output error
        errno.EMFILE,  # too many open files (this process)
        errno.ENFILE,  # too many open files (the system)
        errno.ENOMEM,  # the OS could not allocate memory
    }
)


class UserError(Exception):
    """Bad input: an unknown name, a malformed string or file, contradictory options."""


class TableIntegrityError(UserError):
    """A shipped benchmark table does not match its recorded checksum or shape."""


class AgentFailure(Exception):
    """An agent gave no usable answer and the run stopped rather than pass plain search off as LAPT.

    The command line reports it in one line with exit status 3 (2 is bad input). ``result`` is what
    the run produced up to there (its run directory holds the same, with a summary saying why).
    """

    exit_status = 3

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


class EnvironmentFailure(Exception):
    """The machine refused what a command needs: disk full, an unwritable folder, a closed pipe.

    Not the user's input and not a bug: the command stops with one line naming what failed and
    exit status 1, and what it had written stays consistent (atomic writes, committed transactions).
    """


def environment_failure(exc: BaseException, doing: str = "") -> EnvironmentFailure | None:
    """``exc`` as an :class:`EnvironmentFailure` when it is an OS error of the environment, else None.

    Args:
        exc: the exception caught.
        doing: what was being done ("cannot write runs/x/summary.json"), put before the reason.
    """
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and not doing else ""
    return EnvironmentFailure(f"{doing + ': ' if doing else ''}{reason}{where}")
