"""Text from data made safe to print: control characters shown as escapes, never sent to the terminal.

A principle's statement, a trace's run name, a path in an error: all come from files somebody else may
have written (a shared principle export, a trace from another machine). Printed raw, an ``ESC``
sequence in them can set the window title, clear the screen or rewrite lines already shown, and a
newline can forge a line of output. Every command prints what comes from data through
:func:`printable`.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_KEEP_NEWLINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, keep_newlines: bool = False) -> str:
    """``str(text)`` with C0/C1 control characters (tab aside) and bidirectional overrides escaped.

    Args:
        text: what to print.
        keep_newlines: leave ``\\n`` as is (for a block of lines lapt itself joined); otherwise it is
            escaped too, so a value cannot forge a line of output.
    """
    pattern = _KEEP_NEWLINES if keep_newlines else _CONTROL
    return pattern.sub(_escape, str(text))
