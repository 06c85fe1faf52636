"""Errors that the CLI turns into one clear line and exit status 2.

Every problem caused by what the user typed or supplied (a name, a file, an option) is raised as a
:class:`UserError` so that the command line can report it without a traceback; anything else is a bug.
"""

from __future__ import annotations

from typing import Any


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
