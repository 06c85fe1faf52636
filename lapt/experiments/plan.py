"""What a bench runs: the validated configuration, its transfer pairs, and the list of jobs.

The configuration is a Pydantic model because it crosses two boundaries: it is built from the command
line and saved in ``curves.json``, from which ``lapt report`` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lapt.errors import UserError

MethodName = Literal["lapt", "lapt-offline", "lapt-transfer", "rea", "random", "rea-oracle"]
METHODS: tuple[MethodName, ...] = ("lapt", "lapt-offline", "lapt-transfer", "rea", "random", "rea-oracle")
DEFAULT_METHODS: tuple[MethodName, ...] = ("lapt", "lapt-transfer", "rea", "random", "rea-oracle")
"""``lapt-offline`` is LAPT with the offline miner whatever ``--llm`` says: the default methods add it when
a bench runs an LLM, so every LLM bench shows whether the model beats the miner on the same seeds."""
LABELS: dict[str, str] = {
    "lapt": "LAPT",
    "lapt-offline": "LAPT, offline miner",
    "lapt-transfer": "LAPT, transfer only",
    "rea": "REA (full space)",
    "random": "Random (full space)",
    "rea-oracle": "REA in oracle region (ceiling)",
}
LAPT_METHODS = ("lapt", "lapt-offline", "lapt-transfer")
# The paper's budgets: 20 evaluations on NB201 (we run 100 to also report 50/100), 50 on TNB101; 50 on
# every other space with a table.
DEFAULT_BUDGET = {"nb201": 100, "tnb101": 50}
OTHER_BUDGET = 50
DEFAULT_SOURCE = {"tnb101": "jigsaw"}  # the paper's TNB101 source; other spaces run all ordered pairs
REPORT_BUDGETS = (10, 20, 50, 100)


def space_label(space: str) -> str:
    """How reports name a bench's space: the built-in name, or the space file's name."""
    return Path(space.removeprefix("file:")).name if space.startswith("file:") else space


class Pair(BaseModel):
    """One transfer: principles learned on ``sources``, searched on ``target``.

    A bench of baselines only (no LAPT method) on a space with a single task has pairs without sources:
    REA and random search never read a source task.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[str, ...]
    target: str
    label: str


class BenchConfig(BaseModel):
    """Everything that fixes a bench's results (not how fast it ran: workers are not part of it).

    ``space`` is what :func:`lapt.spaces.get_space` loads (a built-in name, or ``file:PATH`` of a space
    file); ``table`` names the table every evaluation looks up (for a space file, with the first hex
    digits of its sha256).
    """

    model_config = ConfigDict(extra="forbid")

    space: str
    table: str = ""
    pairs: list[Pair] = Field(min_length=1)
    methods: list[MethodName] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    budget: int = Field(ge=1)
    max_ops: int = Field(ge=1, description="Max ops per layer of refined regions; the oracle region's size.")
    top_k: int = Field(50, ge=1)
    reasoner: str = "offline"
    llm: dict[str, Any] | None = None
    prompts_dir: str | None = None
    llm_cache: str | None = None
    lapt_version: str = ""
    allow_same_task: bool = Field(
        False, description="Pairs may learn on their target itself (labelled so: not a transfer)."
    )

    def report_budgets(self) -> list[int]:
        """Budgets at which the final metric is reported: 10/20/50/100 up to the budget, and the budget."""
        out = [b for b in REPORT_BUDGETS if b <= self.budget]
        return out if self.budget in out else [*out, self.budget]


SAME_TASK_MARK = " (learned on target)"
"""Ends the label of a pair whose sources include its target (``--allow-same-task``): not a transfer."""


def pair_label(sources: tuple[str, ...], target: str, all_tasks: tuple[str, ...]) -> str:
    """``src->tgt``; ``others->tgt`` when the sources are every other task (leave-one-out); the target
    alone when there are no sources; marked ``(learned on target)`` when the sources include the target,
    so that no table passes such a pair off as a transfer."""
    if not sources:
        return target
    if target in sources:
        return f"{'+'.join(sources)}->{target}{SAME_TASK_MARK}"
    others = tuple(t for t in all_tasks if t != target)
    if len(sources) > 1 and set(sources) == set(others):
        return f"others->{target}"
    return f"{'+'.join(sources)}->{target}"


def make_pairs(
    tasks: tuple[str, ...],
    space: str,
    sources: list[str],
    targets: list[str],
    pairs: list[str],
    leave_one_out: bool,
    need_sources: bool = True,
    allow_same_task: bool = False,
) -> list[Pair]:
    """The transfer pairs a bench runs, from the command-line choices; UserError on unknown tasks.

    * ``pairs`` (``SRC:TGT``, SRC may join several tasks with ``+``): exactly those;
    * ``leave_one_out``: every target (or those given) learns from all other tasks;
    * ``sources``: one (multi-)source set transferred to every other task (or the targets given);
    * nothing: the paper's source (jigsaw) to every other task on TNB101, all ordered pairs elsewhere;
      on a single-task space, when no method needs a source (``need_sources`` False), the target alone.

    With ``allow_same_task`` a pair's sources may include its target (``--pair t:t``, ``--source t
    --target t``), and a single-task space's pair learns on its one task; such pairs are labelled as
    learned on the target (:data:`SAME_TASK_MARK`).
    """

    def known(task: str) -> str:
        if task not in tasks:
            raise UserError(f"unknown task {task!r} for {space} (known: {', '.join(tasks)})")
        return task

    if pairs and (sources or targets or leave_one_out):
        raise UserError("--pair cannot be combined with --source, --target or --leave-one-out")
    if leave_one_out and sources:
        raise UserError("--leave-one-out learns from all other tasks: drop --source")
    wanted = [known(t) for t in dict.fromkeys(targets)] or list(tasks)
    out: list[tuple[tuple[str, ...], str]] = []
    if pairs:
        for item in pairs:
            src, sep, tgt = item.partition(":")
            if not sep or not src or not tgt:
                raise UserError(f"--pair {item!r}: expected SRC:TGT (SRC may be several tasks joined by '+')")
            names = src.split("+")
            if len(set(names)) < len(names):
                raise UserError(f"--pair {item!r}: a source task is named twice")
            out.append((tuple(known(s) for s in names), known(tgt)))
    elif leave_one_out:
        out = [(tuple(t for t in tasks if t != target), target) for target in wanted]
    elif sources:
        srcs = tuple(known(s) for s in dict.fromkeys(sources))
        out = [(srcs, t) for t in wanted if t not in srcs or (allow_same_task and targets)]
    elif space in DEFAULT_SOURCE:
        src = DEFAULT_SOURCE[space]
        out = [((src,), t) for t in wanted if t != src]
    else:
        out = [((s,), t) for s in tasks for t in wanted if s != t]
        if not out and not need_sources:
            out = [((), t) for t in wanted]
        elif not out and allow_same_task:
            out = [((t,), t) for t in wanted]
    for srcs, target in out:
        if target in srcs and not allow_same_task:
            raise UserError(
                f"pair {'+'.join(srcs)}:{target}: the target is also a source (its data would leak; "
                "--allow-same-task benches it anyway, labelled as learned on the target)"
            )
    if not out:
        if len(tasks) == 1:
            raise UserError(
                f"{space} has one task ({tasks[0]}): LAPT needs a source task to learn from; bench the baselines "
                "with --methods rea,random,rea-oracle, or LAPT learning on the task itself with --allow-same-task "
                "(or run LAPT with `lapt run --principles`)"
            )
        raise UserError("no transfer pair left to run (every target is also a source)")
    unique = list(dict.fromkeys(out))
    return [Pair(sources=s, target=t, label=pair_label(s, t, tasks)) for s, t in unique]


def parse_methods(text: str) -> list[MethodName]:
    """Comma-separated method names, in the canonical order; UserError on unknown ones."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise UserError(f"unknown method(s) {', '.join(unknown) or '(none given)'} (known: {', '.join(METHODS)})")
    return [m for m in METHODS if m in names]


def parse_config(data: Any, origin: str) -> BenchConfig:
    """Validate a saved configuration; UserError with the first problem on one line."""
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise UserError(f"{origin}: invalid bench config at {where}: {err['msg']}") from e


@dataclass(frozen=True)
class Job:
    """One unit of work: one method on one pair with one seed."""

    method: MethodName
    pair: Pair
    seed: int


def plan_jobs(config: BenchConfig) -> list[Job]:
    """Every job, in report order (pair, method, seed)."""
    return [Job(m, p, s) for p in config.pairs for m in config.methods for s in config.seeds]
