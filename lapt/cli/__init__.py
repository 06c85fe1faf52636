"""The ``lapt`` command line: one module per command, registered here.

Every error caused by input (an unknown name, a malformed file, a bad option) ends as one line on
stderr and exit status 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lapt.errors import AgentFailure, UserError

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
    """argparse that reports errors on one line (``lapt: error: ...``) with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser; each command module adds its own sub-parser."""
    from lapt import __version__

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
    except UserError as e:
        print(f"lapt: error: {e}", file=sys.stderr)
        return 2
    except AgentFailure as e:
        where = getattr(e.result, "run_dir", None)
        record = f" (record and summary in {where})" if where is not None else ""
        print(f"lapt: stopped: {e}{record}", file=sys.stderr)
        return AgentFailure.exit_status
    except KeyboardInterrupt:
        print("lapt: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
