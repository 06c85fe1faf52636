"""Records that cross an LLM, disk or CLI boundary: principles, trials.

Masks live in :mod:`lapt.masks` because their schema is built per search space.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Caps on what a principle set may hold. A set travels into every checkpoint of a run, its trace,
# decisions and library: one 30 MB statement made a 516 MB run directory. The caps are far above what
# the learner asks for ("one or two sentences", a handful of principles), so an LLM that overshoots is
# sent back for repair like any other invalid answer. At the caps a set stays under a megabyte of JSON.
MAX_STATEMENT = 2_000
MAX_EVIDENCE = 4_000
MAX_ANALYSIS = 20_000
MAX_PRINCIPLES = 100
MAX_NAMES = 64  # ops named in favour/avoid, tasks seen
Name = Annotated[str, StringConstraints(max_length=200)]


class Principle(BaseModel):
    """One design principle: a statement, the evidence behind it, and how sure the author is.

    ``layer``/``favour``/``avoid`` are optional structure that lets a principle be turned into a mask
    without parsing prose; the LLM fills them when it can, the offline reasoner always does.
    """

    model_config = ConfigDict(extra="forbid")

    statement: str = Field(min_length=1, max_length=MAX_STATEMENT, description="The principle in one or two sentences.")
    evidence: str = Field(
        default="", max_length=MAX_EVIDENCE, description="What in the data supports it (counts, ranks)."
    )
    confidence: float = Field(default=0.5, ge=0.0, le=1.0, description="0 = guess, 1 = certain.")
    layer: Name | None = Field(default=None, description="The layer/edge it concerns, or null if global.")
    favour: list[Name] = Field(default_factory=list, max_length=MAX_NAMES, description="Ops this principle recommends.")
    avoid: list[Name] = Field(
        default_factory=list, max_length=MAX_NAMES, description="Ops this principle advises against."
    )


class PrincipleDraft(BaseModel):
    """What the principle learner and the adapter answer (the schema given to the LLM)."""

    model_config = ConfigDict(extra="forbid")

    analysis: str = Field(
        default="", max_length=MAX_ANALYSIS, description="Step-by-step analysis: information flow, common patterns."
    )
    principles: list[Principle] = Field(
        min_length=1, max_length=MAX_PRINCIPLES, description="General design principles."
    )


class PrincipleSet(BaseModel):
    """A versioned set of principles with where it came from; every version of a run is kept."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, le=1_000_000)
    space: str | None = Field(
        default=None, max_length=4_096, description="Search space the principles were stated for."
    )
    source: str = Field(
        max_length=MAX_STATEMENT, description="How it was made: learned from which tasks, or adapted on which."
    )
    tasks_seen: list[Name] = Field(
        default_factory=list, max_length=MAX_NAMES, description="Tasks whose data the author saw."
    )
    reasoner: Name = ""
    analysis: str = Field(default="", max_length=MAX_ANALYSIS)
    principles: list[Principle] = Field(max_length=MAX_PRINCIPLES)


class Status(enum.StrEnum):
    """How one evaluation ended, for evaluator outcomes and trials alike; failures are data, never raised.

    ``cached``: the run's evaluation cache answered (the evaluation was paid for earlier in this run).
    """

    OK = "ok"
    FAILED = "failed"
    CACHED = "cached"


class Trial(BaseModel):
    """One evaluation of one architecture on the target task.

    ``val`` and ``test`` are the metrics as the benchmark (or the evaluator) reports them; ``fitness`` is
    what selection compares, higher is better: the validation metric, negated where the space declares
    its metric lower-is-better, and None for a failed evaluation. It is stored rather than derived so
    that every reader (strategies, metrics, reports) ranks trials the same way without knowing the space.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0, description="Position in the run: 0 is the first evaluation.")
    arch: str
    task: str
    status: Status
    val: float | None = None
    test: float | None = None
    fitness: float | None = None
    round: int = 0
    mask_version: int = Field(default=0, ge=0, description="The mask (masks/vN.json) the architecture was drawn in.")
    cost_s: float = 0.0
    error: str | None = None
    extras: dict[str, Any] = Field(default_factory=dict)
