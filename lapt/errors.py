"""Errors that the CLI turns into one clear line and exit status 2.

Every problem caused by what the user typed or supplied (a name, a file, an option) is raised as a
:class:`UserError` so that the command line can report it without a traceback; anything else is a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: an unknown name, a malformed string or file, contradictory options."""


class TableIntegrityError(UserError):
    """A shipped benchmark table does not match its recorded checksum or shape."""


class SpaceExhausted(Exception):
    """The current mask holds no architecture that has not been evaluated yet."""
