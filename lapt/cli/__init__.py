"""The ``lapt`` command line: one module per command, registered here.

Every error caused by input (an unknown name, a malformed file, a bad option) ends as one line on
stderr and exit status 2; every failure of the environment (a full disk, an unwritable folder, a reader
that closed the pipe) as one line and exit status 1; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from lapt.errors import AgentFailure, EnvironmentFailure, UserError, environment_failure

# One module per command (``lapt/cli/<name>_cmd.py``), each with ``register(subparsers)``.
COMMAND_MODULES = (
    "spaces_cmd",
    "eval_cmd",
    "learn_cmd",
    "run_cmd",
    "principles_cmd",
    "bench_cmd",
    "resume_cmd",
    "trace_cmd",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors on one line (``lapt: error: ...``) with exit status 2.

    Abbreviated options are off: with them ``--bud 3`` silently meant ``--budget 3``, and adding an
    option could change what an old command line means.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; each command module adds its own sub-parser."""
    from lapt.version import __version__

    parser = _Parser(prog="lapt", description="Design principle transfer for neural architecture search.")
    parser.add_argument("--version", action="version", version=f"lapt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"lapt.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lapt`` script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except UserError as e:
        return _fail(f"lapt: error: {e}", 2)
    except EnvironmentFailure as e:
        return _fail(f"lapt: error: {e}", 1)
    except BrokenPipeError:
        _silence_stdout()
        return _fail("lapt: error: the output was closed before it was all written (broken pipe)", 1)
    except AgentFailure as e:
        where = getattr(e.result, "run_dir", None)
        record = f" (record and summary in {where})" if where is not None else ""
        return _fail(f"lapt: stopped: {e}{record}", AgentFailure.exit_status)
    except KeyboardInterrupt:
        return _fail("lapt: interrupted", 130)
    except (OSError, sqlite3.OperationalError) as e:
        failure = _environment(e)
        if failure is None:
            raise
        return _fail(f"lapt: error: {failure}", 1)
    return int(code or 0)


def _environment(exc: BaseException) -> EnvironmentFailure | None:
    """An OS (or SQLite) error that says the disk is full or a file may not be written, else None."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "disk is full" in text or "readonly database" in text or "disk I/O error" in text:
            return EnvironmentFailure(f"SQLite: {text}")
        return None
    return environment_failure(exc)


def _fail(line: str, code: int) -> int:
    from lapt.cli.printable import printable

    with contextlib.suppress(OSError):  # stderr itself is gone: the exit status is all that is left
        print(printable(line, keep_newlines=True), file=sys.stderr)  # messages quote paths and file contents
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
