"""Options shared by ``learn``, ``run`` and ``bench``, and their translation into settings."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from lapt.errors import UserError


def add_llm_options(p: argparse.ArgumentParser) -> None:
    """--llm and friends; without --llm the offline reasoner is used."""
    g = p.add_argument_group("reasoner")
    g.add_argument("--llm", metavar="openai:MODEL", help="an OpenAI-compatible chat model (default: offline miner)")
    g.add_argument("--llm-base-url", metavar="URL", help="server URL (default: $OPENAI_BASE_URL, else OpenAI)")
    g.add_argument("--llm-timeout", type=float, default=60.0, metavar="S", help="per-call timeout (default 60 s)")
    g.add_argument("--llm-attempts", type=int, default=4, metavar="N", help="attempts per call on transient errors")
    g.add_argument("--llm-repairs", type=int, default=2, metavar="N", help="repair rounds for invalid answers")
    g.add_argument(
        "--llm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request option, repeatable: temperature (default 0; null: the server's), max_tokens (default: what "
        "fits a 4,096-token context; null: none), reasoning_effort, top_p, seed, or any extra body field",
    )
    g.add_argument("--prompts", metavar="DIR", help="folder of prompt files overriding any subset of the shipped ones")


def add_run_options(p: argparse.ArgumentParser, target: bool = True) -> None:
    """The options that define a run."""
    p.add_argument("--space", default="nb201", help="search space: nb201, tnb101, darts, or a space file (.toml)")
    p.add_argument(
        "--source",
        action="append",
        default=None,
        metavar="TASK",
        help="source task(s) to learn principles from (repeat or comma-separate)",
    )
    if target:
        p.add_argument("--target", required=True, metavar="TASK", help="the new task to search on")
        p.add_argument("--budget", type=int, default=20, help="evaluations on the target (default 20)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--strategy", default="rea", choices=["rea", "random", "local"])
        p.add_argument("--population", type=int, help="REA population (default: the space's, 5 on NB201, 10 on TNB101)")
        p.add_argument("--tournament", type=int, help="REA tournament size (default: the space's, 2 / 5)")
        p.add_argument("--adapt-every", type=int, metavar="N", help="evaluations between adaptations (the space's)")
        p.add_argument("--no-adapt", action="store_true", help="transfer only: never adapt the principles")
        p.add_argument(
            "--no-escape",
            action="store_true",
            help="search only inside the refined region with the strategy alone (no steps outside it, no evidence "
            "weights, no neighbour checks)",
        )
        p.add_argument("--batch-size", type=int, default=1, help="candidates evaluated per search step")
        p.add_argument(
            "--evaluator",
            metavar="EVALUATOR",
            help="table (lookup), train (the built-in trainer), python:MODULE:FUNCTION (your function), or python "
            "(the function the space file names); default: the space's table, else the evaluator its file names",
        )
        p.add_argument(
            "--executor",
            default="local",
            choices=["local", "threads", "processes", "ray"],
            help="where evaluations run (default local: in-process, one at a time)",
        )
        p.add_argument(
            "--workers", type=int, metavar="N", help="parallel evaluations (<= cores); for ray: CPUs of the local Ray"
        )
        p.add_argument(
            "--eval-timeout",
            type=float,
            metavar="SECONDS",
            help="fail an evaluation still running after SECONDS, with that reason, and go on (default: no limit; "
            "processes: its worker is stopped; local, threads: its thread is abandoned and runs on)",
        )
        p.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster to use (default: start one on 127.0.0.1)")
        p.add_argument("--cpus-per-trial", type=float, metavar="N", help="Ray CPUs per evaluation (default 1)")
        p.add_argument("--gpus-per-trial", type=float, metavar="N", help="Ray GPUs per evaluation (default 0)")
        p.add_argument("--table", help="benchmark table (e.g. nb201-12epoch for low fidelity)")
        p.add_argument("--allow-same-task", action="store_true", help="allow source == target (leaks target data)")
        p.add_argument(
            "--on-agent-failure",
            choices=["fallback", "stop", "continue"],
            default="fallback",
            help="when a model's learner or refiner gives nothing usable: use the offline miner's principles and "
            "the offline refiner's region and mark the run degraded (default); stop with exit status 3; or "
            "search the full space without transfer",
        )
    p.add_argument("--max-ops", type=int, metavar="K", help="max ops per layer in a refined space (the space's)")
    p.add_argument("--top-k", type=int, default=50, help="source architectures shown to the learner")


def sources(args: argparse.Namespace) -> list[str]:
    """--source values, comma-separated or repeated."""
    out: list[str] = []
    for item in args.source or []:
        out += [s.strip() for s in item.split(",") if s.strip()]
    return out


def llm_settings(args: argparse.Namespace, announce: bool = True) -> Any:
    """LLMSettings from --llm (explicit options beat environment variables), or None for offline.

    Every LLM option is checked here, before any work: the URL (http/https with a host, from
    --llm-base-url or OPENAI_BASE_URL), a finite timeout > 0, the counts, every --llm-option.
    ``announce=False`` leaves the offline notice to the caller (:func:`announce_offline`), so that a
    command refusing bad input prints nothing but its one error line.
    """
    if not args.llm:
        if announce:
            announce_offline()
        return None
    provider, _, model = args.llm.partition(":")
    if provider != "openai" or not model:
        raise UserError(f"--llm {args.llm!r}: expected openai:MODEL (any OpenAI-compatible server)")
    from pydantic import SecretStr

    from lapt.agents.llm import LLMSettings
    from lapt.runs.config import check_base_url, check_llm_options

    key = os.environ.get("OPENAI_API_KEY")
    if args.llm_base_url:
        base_url: str | None = check_base_url(args.llm_base_url, "--llm-base-url")
    elif os.environ.get("OPENAI_BASE_URL"):
        base_url = check_base_url(os.environ["OPENAI_BASE_URL"], "OPENAI_BASE_URL")
    else:
        base_url = None
    if not key and base_url is None:
        raise UserError("--llm needs OPENAI_API_KEY for the OpenAI API (or --llm-base-url for a local server)")
    if not math.isfinite(args.llm_timeout) or args.llm_timeout <= 0:
        raise UserError(f"--llm-timeout must be a finite number of seconds > 0, got {args.llm_timeout:g}")
    if args.llm_attempts < 1 or args.llm_repairs < 0:
        raise UserError("--llm-attempts must be >= 1 and --llm-repairs >= 0")
    options = collect_llm_options(getattr(args, "llm_option", None) or [])
    try:
        options = check_llm_options(options)
    except ValueError as e:
        raise UserError(f"--llm-option {str(e).removeprefix('option ')}") from None
    return LLMSettings(
        model=model,
        base_url=base_url,
        api_key=SecretStr(key) if key else None,
        timeout_s=args.llm_timeout,
        max_attempts=args.llm_attempts,
        max_repairs=args.llm_repairs,
        options=options,
    )


def collect_llm_options(texts: list[str]) -> dict[str, Any]:
    """The ``--llm-option KEY=VALUE`` pairs as a dict; a KEY given twice is refused, not last-wins.

    Values of options named like credentials (:func:`lapt.runs.config.is_secret_option`) are
    registered as secrets, so that no log, trace or error shows them (``config.json`` records them as
    ``[redacted]``).
    """
    from lapt.llm.redaction import register_secret
    from lapt.runs.config import is_secret_option, parse_llm_option

    options: dict[str, Any] = {}
    for text in texts:
        k, v = parse_llm_option(text)
        if k in options:
            alias = " (max_completion_tokens is another name of max_tokens)" if k == "max_tokens" else ""
            raise UserError(f"--llm-option {k} is given twice{alias}: give each option once")
        if is_secret_option(k) and isinstance(v, str):
            register_secret(v)
        options[k] = v
    return options


def announce_offline() -> None:
    """Say on stderr that no LLM is configured and the offline miner answers instead."""
    print("lapt: no LLM configured (--llm); using the offline principle miner", file=sys.stderr)


def _eval_timeout(value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise UserError(f"--eval-timeout must be a finite number of seconds > 0, got {value:g}")
    return value


def run_values(args: argparse.Namespace) -> dict[str, Any]:
    """RunSettings fields from parsed options."""
    values: dict[str, Any] = {
        "space": args.space,
        "sources": sources(args),
        "target": args.target,
        "budget": args.budget,
        "seed": args.seed,
        "strategy": args.strategy,
        "population": args.population,
        "tournament": args.tournament,
        "adapt": not args.no_adapt,
        "escape": not args.no_escape,
        "adapt_every": args.adapt_every,
        "max_ops": args.max_ops,
        "top_k": args.top_k,
        "batch_size": args.batch_size,
        "evaluator": args.evaluator,
        "executor": args.executor,
        "workers": args.workers,
        "ray_address": args.ray_address,
        "eval_timeout": _eval_timeout(args.eval_timeout),
        **({"cpus_per_trial": args.cpus_per_trial} if args.cpus_per_trial is not None else {}),
        **({"gpus_per_trial": args.gpus_per_trial} if args.gpus_per_trial is not None else {}),
        "table": args.table,
        "allow_same_task": args.allow_same_task,
        "prompts_dir": args.prompts,
        "on_agent_failure": args.on_agent_failure,
    }
    return values
