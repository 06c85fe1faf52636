"""Why a bench run's evaluations failed: not in the table, refused by the space's rules, or an error.

A user space with a sparse table or validity rules can waste part of every budget on architectures that
give no result; the bench counts them per run (``results.csv``) and the report sums them per method and
pair, so that a user sees the waste without re-running the bench's jobs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lapt.schemas import Trial
from lapt.spaces import SearchSpace
from lapt.tables.base import BenchmarkTable
from lapt.tables.user import ArchNotInTable

FAILURE_COLUMNS = ("failed_missing", "failed_invalid", "failed_error")
"""``results.csv`` columns: evaluations not in the table, refused by the rules, failed otherwise."""


@dataclass(frozen=True)
class FailureCounts:
    """Failed evaluations of one run, by cause.

    Attributes:
        missing: the architecture is valid but the table has no value for it on the target.
        invalid: the space's validity rules refuse the architecture (checked again here, whatever the
            search believed).
        error: anything else (an evaluator that failed on an architecture the table holds).
    """

    missing: int = 0
    invalid: int = 0
    error: int = 0

    def columns(self) -> dict[str, int]:
        """The counts under their ``results.csv`` column names."""
        return dict(zip(FAILURE_COLUMNS, (self.missing, self.invalid, self.error), strict=True))


def count_failures(space: SearchSpace, table: BenchmarkTable, trials: Sequence[Trial], task: str) -> FailureCounts:
    """Classify every trial without a fitness (a failed evaluation, or a value that is not a number)."""
    missing = invalid = error = 0
    for trial in trials:
        if trial.fitness is not None:
            continue
        genotype = space.parse(trial.arch)
        if space.why_invalid(genotype) is not None:
            invalid += 1
            continue
        try:
            val = table.lookup(genotype, task).val
        except ArchNotInTable:
            missing += 1
            continue
        if val is None or math.isnan(val):
            missing += 1
        else:
            error += 1
    return FailureCounts(missing=missing, invalid=invalid, error=error)
