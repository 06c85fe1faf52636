"""``lapt resume RUN_DIR``: continue a killed run from its last checkpoint.

The settings come from the run's ``config.json``; the run is refused (one line, exit status 2, nothing
written) when another process holds the folder, or when the lapt version, the package source, the
prompt files or the config changed since it started. See :mod:`lapt.graph.durable`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``resume`` sub-command."""
    p = sub.add_parser("resume", help="continue a killed run from its last checkpoint")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory of the run to continue")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--llm-base-url",
        metavar="URL",
        help="the LLM server URL of the run, when it held a password (recorded redacted; or OPENAI_BASE_URL)",
    )
    p.add_argument(
        "--llm-option",
        action="append",
        metavar="KEY=VALUE",
        help="a secret --llm-option of the run again (api_key, *_token...: recorded redacted); repeatable",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resume, then print the result as ``lapt run`` does."""
    from lapt.api import resume
    from lapt.cli.common import collect_llm_options
    from lapt.cli.run_report import report
    from lapt.runs.config import check_base_url

    url = check_base_url(args.llm_base_url, "--llm-base-url") if args.llm_base_url else None
    secrets = collect_llm_options(args.llm_option or [])
    return report(resume(Path(args.run_dir), progress=not args.quiet, llm_base_url=url, llm_options=secrets))
