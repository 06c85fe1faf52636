"""Evaluators: turn (space, genotype, task) into metrics, by table lookup or by real training.

An evaluator never raises for a bad architecture: the outcome carries ``status="failed"`` and the
reason, because a NAS run must survive a network that cannot be built or trained.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from lapt.schemas import Status, Trial
from lapt.spaces import Genotype, SearchSpace
from lapt.tables.base import BenchmarkTable
from lapt.tables.registry import evaluation_table
from lapt.tables.user import ArchNotInTable


class Outcome(BaseModel):
    """What one evaluation produced."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    val: float | None = None
    test: float | None = None
    cost_s: float = 0.0
    error: str | None = None
    extras: dict[str, Any] = {}


class Evaluator(Protocol):
    """Anything that scores architectures; ``settings`` keys the evaluation cache."""

    name: str

    def settings(self) -> dict[str, Any]:
        """Every setting that changes the result (table name, epochs, seed...)."""
        ...

    def evaluate(self, space: SearchSpace, genotype: Genotype, task: str) -> Outcome:
        """Score one architecture on ``task``."""
        ...


class TabularEvaluator:
    """Look metrics up in a shipped benchmark table (NAS-Bench-201, TransNAS-Bench-101 micro)."""

    name = "table"

    def __init__(self, table: BenchmarkTable):
        self.table = table

    @classmethod
    def for_space(cls, space: SearchSpace, table_name: str | None = None) -> TabularEvaluator:
        """The default table of ``space`` (or ``table_name``); UserError if the space has none.

        The default is the built-in table of a built-in space, or the table a user space file declares.
        """
        return cls(evaluation_table(space, table_name))

    def settings(self) -> dict[str, Any]:
        return {"evaluator": self.name, "table": self.table.name}

    def evaluate(self, space: SearchSpace, genotype: Genotype, task: str) -> Outcome:
        start = time.perf_counter()
        try:
            m = self.table.lookup(genotype, task)
        except ArchNotInTable as e:  # a sparse user table: this architecture was never measured
            return Outcome(status=Status.FAILED, error=str(e), cost_s=time.perf_counter() - start)
        return Outcome(status=Status.OK, val=m.val, test=m.test, cost_s=time.perf_counter() - start)


def fitness_of(space: SearchSpace, status: Status, val: float | None) -> float | None:
    """The selection metric of an outcome: validation, sign-adjusted so higher is better; None if it failed."""
    if status is Status.FAILED or val is None or val != val:  # NaN is a failure, not a score
        return None
    return val if space.higher_is_better else -val


def evaluate_trial(
    evaluator: Evaluator,
    space: SearchSpace,
    arch: str,
    task: str,
    index: int,
    round_: int,
    mask_version: int = 0,
) -> Trial:
    """Evaluate ``arch`` and wrap the outcome as a Trial; a failed evaluation is a failed trial."""
    genotype = space.parse(arch)
    out = evaluator.evaluate(space, genotype, task)
    return Trial(
        index=index,
        arch=space.to_str(genotype),
        task=task,
        status=out.status,
        val=out.val,
        test=out.test,
        fitness=fitness_of(space, out.status, out.val),
        round=round_,
        mask_version=mask_version,
        cost_s=float(f"{out.cost_s:.4g}"),  # wall time: digits beyond the fourth are noise
        error=out.error,
        extras=out.extras,
    )
