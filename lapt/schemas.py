"""Records that cross an LLM, disk or CLI boundary: principles, trials.

Masks live in :mod:`lapt.masks` because their schema is built per search space.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Principle(BaseModel):
    """One design principle: a statement, the evidence behind it, and how sure the author is.

    ``layer``/``favour``/``avoid`` are optional structure that lets a principle be turned into a mask
    without parsing prose; the LLM fills them when it can, the offline reasoner always does.
    """

    model_config = ConfigDict(extra="forbid")

    statement: str = Field(min_length=1, description="The principle in one or two sentences.")
    evidence: str = Field(default="", description="What in the data supports it (counts, ranks).")
    confidence: float = Field(default=0.5, ge=0.0, le=1.0, description="0 = guess, 1 = certain.")
    layer: str | None = Field(default=None, description="The layer/edge it concerns, or null if global.")
    favour: list[str] = Field(default_factory=list, description="Ops this principle recommends.")
    avoid: list[str] = Field(default_factory=list, description="Ops this principle advises against.")


class PrincipleDraft(BaseModel):
    """What the principle learner and the adapter answer (the schema given to the LLM)."""

    model_config = ConfigDict(extra="forbid")

    analysis: str = Field(default="", description="Step-by-step analysis: information flow, common patterns.")
    principles: list[Principle] = Field(min_length=1, description="General design principles.")


class PrincipleSet(BaseModel):
    """A versioned set of principles with where it came from; every version of a run is kept."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0)
    space: str | None = Field(default=None, description="Search space the principles were stated for.")
    source: str = Field(description="How it was made: learned from which tasks, or adapted on which.")
    tasks_seen: list[str] = Field(default_factory=list, description="Tasks whose data the author saw.")
    reasoner: str = ""
    analysis: str = ""
    principles: list[Principle]


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
